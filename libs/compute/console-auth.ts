import { createHash, randomUUID } from 'node:crypto';
import { DataSource, LessThan } from 'typeorm';
import { ConsoleAuthTokenEntity } from '@novum/db';
import type { ConsoleEndpoint } from '@novum/virt';

/** What a valid token admits to: the guest and where its console is. */
export interface ConsoleConnectInfo {
  instanceUuid: string;
  consoleType: string;
  host: string;
  port: number;
  internalAccessPath: string | null;
  accessUrlBase: string;
  expires: number;
}

const hashOf = (token: string) => createHash('sha256').update(token).digest('hex');

/**
 * Nova's ConsoleAuthToken: the compute API authorizes a console for a guest (a random token, kept only as its
 * SHA-256, with the endpoint the guest's agent gave, for `ttlSeconds`); the console proxy validates the token
 * it is shown. A token stays good until it expires (Nova lets a client reconnect with it) or its instance
 * is deleted; expired ones are purged as new ones are made.
 */
export class ConsoleAuthTokens {
  constructor(
    private readonly dataSource: DataSource,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records a token for the endpoint and answers the token and the URL that carries it. */
  async authorize(input: {
    instanceUuid: string;
    consoleType: string;
    endpoint: ConsoleEndpoint;
    accessUrlBase: string;
    ttlSeconds: number;
  }): Promise<{ token: string; url: string }> {
    const token = randomUUID();
    const nowSeconds = Math.floor(this.now() / 1000);
    const repository = this.dataSource.getRepository(ConsoleAuthTokenEntity);
    await repository.delete({ expires: LessThan(nowSeconds) });
    await repository.insert({
      tokenHash: hashOf(token),
      consoleType: input.consoleType,
      host: input.endpoint.host,
      port: input.endpoint.port,
      internalAccessPath: input.endpoint.internalAccessPath ?? null,
      instanceUuid: input.instanceUuid,
      accessUrlBase: input.accessUrlBase,
      expires: nowSeconds + input.ttlSeconds,
      createdAt: new Date(this.now()).toISOString(),
    });
    const separator = input.accessUrlBase.includes('?') ? '&' : '?';
    return { token, url: `${input.accessUrlBase}${separator}token=${encodeURIComponent(token)}` };
  }

  /** What the token admits to, or undefined for a token that is unknown or expired. */
  async validate(token: string): Promise<ConsoleConnectInfo | undefined> {
    if (!token) return undefined;
    const row = await this.dataSource
      .getRepository(ConsoleAuthTokenEntity)
      .findOneBy({ tokenHash: hashOf(token) });
    if (!row || row.expires * 1000 <= this.now()) return undefined;
    return {
      instanceUuid: row.instanceUuid,
      consoleType: row.consoleType,
      host: row.host,
      port: row.port,
      internalAccessPath: row.internalAccessPath,
      accessUrlBase: row.accessUrlBase,
      expires: row.expires,
    };
  }

  /** Nova's clean_console_auths_for_instance: every token of the instance goes. */
  async deleteForInstance(instanceUuid: string): Promise<void> {
    await this.dataSource.getRepository(ConsoleAuthTokenEntity).delete({ instanceUuid });
  }
}
