import { createServer, IncomingMessage, Server, ServerResponse, STATUS_CODES } from 'node:http';
import { AddressInfo, connect, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { rootLogger } from '@novum/common';
import type { ConsoleConnectInfo } from '@novum/compute';

export interface SerialProxyOptions {
  /** The console tokens the compute API records (ConsoleAuthTokens). */
  tokens: { validate(token: string): Promise<ConsoleConnectInfo | undefined> };
  /** Whether the token's instance still exists: a deleted instance's tokens admit no one. */
  instanceExists(instanceUuid: string): Promise<boolean>;
  /** How long the agent's relay may take to accept. */
  connectTimeoutMs?: number;
}

/** An HTTP refusal of a websocket upgrade. */
class Refusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The websocket subprotocol Nova's proxy (websockify) speaks: raw bytes in binary frames. */
const BINARY = 'binary';

/**
 * nova-serialproxy: a websocket server whose clients (a browser's terminal, websocat, Horizon) come with the
 * token of a console URL (`?token=`, or a `token` cookie). A valid token names the guest and where its
 * console is: the compute agent's relay on the guest's host, which the proxy connects to with the token's
 * ticket. Then the guest's serial port flows both ways: what the client sends (binary or text frames) goes
 * to the guest as bytes, what the guest writes comes back in binary frames. A bad, expired or void token is
 * refused before the upgrade (401), as is a page from another origin (403, Nova's origin check).
 */
export class SerialProxy {
  private readonly http: Server;
  private readonly websockets = new WebSocketServer({
    noServer: true,
    handleProtocols: (protocols) => (protocols.has(BINARY) ? BINARY : false),
  });
  private readonly log = rootLogger().child({ service: 'serialproxy' });
  private readonly agents = new Set<Socket>();

  constructor(private readonly options: SerialProxyOptions) {
    this.http = createServer((request, response) => this.plainRequest(request, response));
    this.http.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      void this.upgrade(request, socket, head);
    });
  }

  get port(): number {
    return (this.http.address() as AddressInfo | null)?.port ?? 0;
  }

  async listen(port: number, host: string): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(port, host, () => {
        this.http.off('error', reject);
        resolve();
      });
    });
  }

  async close(): Promise<void> {
    for (const client of this.websockets.clients) client.terminate();
    for (const agent of this.agents) agent.destroy();
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  private plainRequest(_request: IncomingMessage, response: ServerResponse): void {
    const body =
      'The serial console proxy: connect with a websocket to the URL of a console (with its token).\n';
    response.writeHead(426, { 'content-type': 'text/plain', upgrade: 'websocket', connection: 'Upgrade' });
    response.end(body);
  }

  private async upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => socket.destroy());
    let agent: Socket;
    let early: Buffer;
    let info: ConsoleConnectInfo;
    try {
      checkOrigin(request);
      info = await this.authorize(tokenOf(request));
      ({ agent, early } = await this.connectAgent(info));
    } catch (error) {
      const refusal =
        error instanceof Refusal ? error : new Refusal(503, 'The serial console is not reachable.');
      if (!(error instanceof Refusal)) this.log.warn({ err: error }, 'serial console proxy failed');
      return refuse(socket, refusal);
    }
    if (socket.destroyed) {
      agent.destroy();
      return;
    }
    this.websockets.handleUpgrade(request, socket, head, (client) => {
      this.log.info({ instance_uuid: info.instanceUuid }, 'serial console connected');
      this.relay(client, agent, early);
    });
  }

  /** The token's record, if the token is good and its instance still exists. */
  private async authorize(token: string | undefined): Promise<ConsoleConnectInfo> {
    const info = token ? await this.options.tokens.validate(token) : undefined;
    if (!info || !(await this.options.instanceExists(info.instanceUuid))) {
      throw new Refusal(401, 'The token has expired or is invalid.');
    }
    return info;
  }

  /** Connects to the agent's relay and hands it the ticket; resolves once it answered `OK`. */
  private connectAgent(info: ConsoleConnectInfo): Promise<{ agent: Socket; early: Buffer }> {
    return new Promise((resolve, reject) => {
      const agent = connect({ host: info.host, port: info.port });
      this.agents.add(agent);
      agent.once('close', () => this.agents.delete(agent));
      let answer = Buffer.alloc(0);
      const fail = (error: Error) => {
        agent.destroy();
        reject(error);
      };
      agent.setTimeout(this.options.connectTimeoutMs ?? 10_000, () =>
        fail(new Refusal(504, 'The compute host did not answer.')),
      );
      agent.once('error', fail);
      agent.once('connect', () => agent.write(`${info.internalAccessPath ?? ''}\n`));
      const onData = (chunk: Buffer) => {
        answer = Buffer.concat([answer, chunk]);
        const newline = answer.indexOf(0x0a);
        if (newline < 0) return;
        agent.off('data', onData);
        agent.off('error', fail);
        agent.off('end', closed);
        agent.on('error', () => agent.destroy());
        agent.setTimeout(0);
        agent.pause();
        const line = answer.subarray(0, newline).toString('utf8');
        if (line !== 'OK') {
          agent.destroy();
          reject(new Refusal(409, `The serial console is not available: ${line.replace(/^ERR /, '')}`));
          return;
        }
        resolve({ agent, early: answer.subarray(newline + 1) });
      };
      const closed = () => fail(new Refusal(503, 'The compute host closed the console.'));
      agent.on('data', onData);
      agent.once('end', closed);
    });
  }

  private relay(client: WebSocket, agent: Socket, early: Buffer): void {
    if (agent.destroyed) {
      client.close(1000, 'console closed');
      return;
    }
    if (early.length > 0) client.send(early, { binary: true });
    agent.on('data', (chunk: Buffer) => client.send(chunk, { binary: true }));
    agent.on('error', () => client.close(1011, 'console error'));
    agent.on('close', () => client.close(1000, 'console closed'));
    client.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => {
      const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer);
      agent.write(bytes);
    });
    client.on('close', () => agent.destroy());
    client.on('error', () => agent.destroy());
    agent.resume();
  }
}

/** The token of the console URL (`?token=`), or of the `token` cookie as websockify takes it. */
function tokenOf(request: IncomingMessage): string | undefined {
  const url = new URL(request.url ?? '/', 'ws://proxy');
  const fromQuery = url.searchParams.get('token');
  if (fromQuery) return fromQuery;
  for (const part of (request.headers.cookie ?? '').split(';')) {
    const [name, ...value] = part.trim().split('=');
    if (name === 'token') return decodeURIComponent(value.join('='));
  }
  return undefined;
}

/**
 * Nova's origin check against cross-site websocket hijacking: a browser's page must come from the host the
 * client connected to. Clients that send no Origin (websocat, the SDKs) pass.
 */
function checkOrigin(request: IncomingMessage): void {
  const origin = request.headers.origin;
  if (!origin) return;
  let originHost: string;
  try {
    originHost = new URL(origin).hostname;
  } catch {
    throw new Refusal(403, 'Origin header not valid.');
  }
  let host: string | undefined;
  try {
    host = new URL(`ws://${request.headers.host ?? ''}`).hostname;
  } catch {
    host = undefined;
  }
  if (originHost !== host) throw new Refusal(403, 'Origin header does not match this host.');
}

function refuse(socket: Duplex, refusal: Refusal): void {
  const body = `${refusal.message}\n`;
  socket.end(
    `HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status] ?? 'Error'}\r\n` +
      'Connection: close\r\nContent-Type: text/plain\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
