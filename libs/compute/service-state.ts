import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { ComputeServiceEntity, nowIso } from '@novum/db';
import { rootLogger } from '@novum/common';

/** Nova's servicegroup `is_up`: heard from within the service-down time, and not forced down. */
export function isServiceUp(service: ComputeServiceEntity, now: number, downTimeSeconds: number): boolean {
  if (service.forcedDown) return false;
  const seen = service.lastSeenUp ?? service.updatedAt ?? service.createdAt;
  return now - Date.parse(seen) <= downTimeSeconds * 1000;
}

/** Service record version: Nova's SERVICE_VERSION, so that clients comparing it see a recent service. */
const SERVICE_VERSION = 66;

/**
 * A service's row in the services table and its heartbeat: registered (or found again) at start, then
 * `last_seen_up` and `report_count` renewed every interval. `disabled` and `forced_down` are the
 * operator's and are never touched here.
 */
export class ServiceHeartbeat {
  private timer?: NodeJS.Timeout;
  private beating?: Promise<void>;
  private readonly log = rootLogger().child({ component: 'heartbeat' });

  constructor(
    private readonly dataSource: DataSource,
    readonly host: string,
    readonly binary: string,
    private readonly intervalSeconds: number,
    private readonly onBeat?: () => Promise<void>,
  ) {}

  async start(): Promise<void> {
    await this.register();
    await this.onBeat?.();
    this.timer = setInterval(() => void this.beatOnce(), this.intervalSeconds * 1000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.beating;
  }

  private beatOnce(): void {
    if (this.beating) return;
    this.beating = this.beat()
      .catch((error) =>
        this.log.warn({ err: error, host: this.host, binary: this.binary }, 'heartbeat failed'),
      )
      .finally(() => (this.beating = undefined));
  }

  private async beat(): Promise<void> {
    const now = nowIso();
    await this.dataSource
      .createQueryBuilder()
      .update(ComputeServiceEntity)
      .set({ lastSeenUp: now, updatedAt: now, reportCount: () => 'report_count + 1' })
      .where('host = :host AND "binary" = :binary', { host: this.host, binary: this.binary })
      .execute();
    await this.onBeat?.();
  }

  private async register(): Promise<void> {
    const repository = this.dataSource.getRepository(ComputeServiceEntity);
    const now = nowIso();
    const existing = await repository.findOneBy({ host: this.host, binary: this.binary });
    if (existing) {
      await repository.update(
        { id: existing.id },
        { lastSeenUp: now, updatedAt: now, reportCount: existing.reportCount + 1, version: SERVICE_VERSION },
      );
      return;
    }
    try {
      await repository.insert({
        uuid: randomUUID(),
        host: this.host,
        binary: this.binary,
        topic: this.binary === 'nova-compute' ? 'compute' : this.binary.replace(/^nova-/, ''),
        reportCount: 1,
        disabled: false,
        disabledReason: null,
        forcedDown: false,
        lastSeenUp: now,
        version: SERVICE_VERSION,
        createdAt: now,
        updatedAt: now,
      });
    } catch (error) {
      // The unique (host, binary) key: another process of the same service registered it first.
      if (!(await repository.findOneBy({ host: this.host, binary: this.binary }))) throw error;
    }
  }
}
