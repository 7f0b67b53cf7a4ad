// Unit tests assert behaviour, not log lines: keep pino quiet unless a run asks otherwise.
process.env.NOVUM_LOG_LEVEL = process.env.NOVUM_LOG_LEVEL || 'silent';
