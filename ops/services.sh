#!/usr/bin/env bash
# Makes sure PostgreSQL (127.0.0.1:5432, trust auth for local TCP) and RabbitMQ (127.0.0.1:5672,
# guest/guest) answer, installing and starting them from Debian's packages when they do not.
set -euo pipefail
log() { printf '\033[1m== %s\033[0m\n' "$*"; }
answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_for() { for _ in $(seq 1 120); do answers "$1" && return 0; sleep 1; done; echo "port $1 did not open" >&2; return 1; }

if ! answers 5432; then
  log "PostgreSQL"
  command -v pg_ctlcluster >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  hba=/etc/postgresql/$version/main/pg_hba.conf
  grep -q '^host all all 127.0.0.1/32 trust' "$hba" || sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || pg_ctlcluster --skip-systemctl-redirect "$version" main reload
  wait_for 5432
fi

if ! answers 5672; then
  log "RabbitMQ"
  command -v rabbitmq-server >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null; }
  # Every AMQP connection and quorum queue holds files; started without systemd, the broker would get the shell's
  # 1,024 (about 900 clients), so it gets the limit of RabbitMQ's own unit (LimitNOFILE=65536), or the most allowed.
  (ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; rabbitmq-server -detached)
  wait_for 5672
  rabbitmqctl await_startup >/dev/null
fi
