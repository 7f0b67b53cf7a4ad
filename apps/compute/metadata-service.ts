import { spawn } from 'node:child_process';
import { createServer, IncomingMessage, ServerResponse } from 'node:http';
import type { Server, Socket } from 'node:net';
import { rootLogger } from '@novum/common';
import type { InstanceRecords } from '@novum/compute';
import {
  HostNetwork,
  InstanceMetadata,
  InstanceSpec,
  METADATA_ADDRESS,
  MetadataListeners,
  NetworkInfo,
} from '@novum/virt';
import { instanceSpecOf } from './compute-manager';
import type { GuestNetworking } from './guest-network';
import { ServiceCredential, serviceSession } from './service-client';

/** What the metadata of one guest is made of. */
export interface MetadataSource {
  instance: InstanceSpec;
  networkInfo: NetworkInfo;
}

/** The guest of this host that has `address` on the network, or undefined. */
export type MetadataResolver = (networkId: string, address: string) => Promise<MetadataSource | undefined>;

/** A guest's resource signal as the orchestration API answered it. */
export interface ForwardedAnswer {
  status: number;
  contentType: string;
  body: Buffer;
}

/** Sends a guest's signal (`/v1/...` of the orchestration API, the guest's own token) on to the API. */
export type SignalForwarder = (
  path: string,
  token: string | undefined,
  contentType: string | undefined,
  body: Buffer,
) => Promise<ForwardedAnswer>;

/**
 * The only requests a guest may send on: Heat's resource signal, under `/heat-api` (the default
 * NOVUM_HEAT_WAITCONDITION_SERVER_URL is this service). Segments are plain names, never `.` or `..`.
 */
const SIGNAL_PATH =
  /^\/heat-api(\/v1\/(?!\.\.?\/)[\w.~%-]+\/stacks\/(?!\.\.?\/)[\w.~%-]+\/(?!\.\.?\/)[\w.~%-]+\/resources\/(?!\.\.?\/)[\w.~%-]+\/signal)$/;
const MAX_SIGNAL_BYTES = 64 * 1024;

/** A listening socket on METADATA_ADDRESS port 80 inside a network namespace. */
export type NamespaceListen = (netns: string) => Promise<Server>;

/** How long a guest's metadata is reused (Nova's `metadata_cache_expiration`, 15 s by default). */
const CACHE_MS = 15_000;
const LISTEN_TIMEOUT_MS = 15_000;

/**
 * Node cannot enter a network namespace itself, so a short-lived child made with `ip netns exec` opens the
 * listening socket there and hands it over the IPC channel; the socket stays in the namespace it was made
 * in, and the agent accepts on it. The child ends at once.
 */
export const listenInNamespace: NamespaceListen = (netns) =>
  new Promise<Server>((resolve, reject) => {
    const script = [
      "const server = require('node:net').createServer();",
      "server.on('error', (error) => { console.error(error.message); process.exit(1); });",
      `server.listen({ host: '${METADATA_ADDRESS}', port: 80 }, () =>`,
      "  process.send('listening', server, () => { server.close(); process.disconnect(); }));",
    ].join('\n');
    const env = { ...process.env };
    delete env.NODE_OPTIONS;
    const child = spawn('ip', ['netns', 'exec', netns, process.execPath, '-e', script], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      env,
    });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), LISTEN_TIMEOUT_MS);
    child.on('message', (_message, handle) => {
      clearTimeout(timer);
      resolve(handle as Server);
    });
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`no metadata listener in ${netns} (${code}): ${stderr.trim().slice(0, 300)}`));
    });
  });

/**
 * The metadata service on this host (Nova's metadata API behind Neutron's per-network proxy, in one): the
 * host network opens a listener in each network's metadata namespace, so a connection's network is the
 * listener it came through and its guest the port of that network holding the source address (which the
 * port's anti-spoofing rules vouch for). Nothing a guest sends (headers, paths) chooses whose data it gets.
 */
export class GuestMetadataService implements MetadataListeners {
  private readonly log = rootLogger().child({ service: 'compute', component: 'metadata' });
  private readonly http = createServer((request, response) => void this.handle(request, response));
  private readonly listeners = new Map<string, Promise<Server>>();
  private readonly sockets = new Map<string, Set<Socket>>();
  private readonly networkOf = new WeakMap<Socket, string>();
  private readonly cache = new Map<string, { until: number; metadata: InstanceMetadata }>();
  private resolver?: MetadataResolver;
  private forwarder?: SignalForwarder;

  constructor(private readonly listen: NamespaceListen = listenInNamespace) {}

  /** Lets guests signal wait conditions through this service (to the orchestration API). */
  forwardSignals(forwarder: SignalForwarder): void {
    this.forwarder = forwarder;
  }

  /** Starts answering with this resolver (until then, every request gets 503). */
  serve(resolver: MetadataResolver): void {
    this.resolver = resolver;
  }

  async open(networkId: string, netns: string): Promise<void> {
    if (this.listeners.has(networkId)) {
      await this.listeners.get(networkId);
      return;
    }
    const opening = this.listen(netns);
    this.listeners.set(networkId, opening);
    let server: Server;
    try {
      server = await opening;
    } catch (error) {
      this.listeners.delete(networkId);
      throw error;
    }
    // The listeners never keep the agent's process alive on their own.
    server.unref();
    const sockets = new Set<Socket>();
    this.sockets.set(networkId, sockets);
    server.on('connection', (socket: Socket) => {
      this.networkOf.set(socket, networkId);
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      this.http.emit('connection', socket);
    });
    server.on('error', (error) => this.log.warn({ err: error, network: networkId }, 'metadata listener'));
  }

  async close(networkId: string): Promise<void> {
    const opening = this.listeners.get(networkId);
    this.listeners.delete(networkId);
    const server = await opening?.catch(() => undefined);
    server?.close();
    for (const socket of this.sockets.get(networkId) ?? []) socket.destroy();
    this.sockets.delete(networkId);
    for (const key of this.cache.keys()) if (key.startsWith(`${networkId} `)) this.cache.delete(key);
  }

  async closeAll(): Promise<void> {
    for (const networkId of [...this.listeners.keys()]) await this.close(networkId);
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const networkId = this.networkOf.get(request.socket);
    const address = (request.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    const reply = (status: number, body: Buffer | string, contentType = 'text/plain') => {
      const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body);
      response.writeHead(status, { 'content-type': contentType, 'content-length': bytes.length });
      response.end(request.method === 'HEAD' ? undefined : bytes);
    };
    try {
      const signal = request.method === 'POST' ? SIGNAL_PATH.exec(request.url ?? '') : null;
      if (signal && this.forwarder && networkId) {
        const body = await readBody(request, MAX_SIGNAL_BYTES);
        if (!body) {
          reply(413, '413 Request Entity Too Large\n');
          return;
        }
        const token = request.headers['x-auth-token'];
        const answer = await this.forwarder(
          signal[1],
          typeof token === 'string' ? token : undefined,
          request.headers['content-type'],
          body,
        );
        this.log.info({ network: networkId, address, status: answer.status }, 'forwarded a resource signal');
        reply(answer.status, answer.body, answer.contentType);
        return;
      }
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        reply(405, '405 Method Not Allowed\n');
        return;
      }
      if (!this.resolver || !networkId) {
        reply(503, '503 Service Unavailable\n');
        return;
      }
      const metadata = await this.metadataOf(networkId, address);
      if (!metadata) {
        this.log.info({ network: networkId, address }, 'metadata request from an address of no guest here');
        reply(404, '404 Not Found\n\nThe resource could not be found.\n');
        return;
      }
      const answer = metadata.lookup(request.url ?? '/');
      reply(answer.status, answer.body, answer.contentType);
    } catch (error) {
      this.log.error({ err: error, network: networkId, address }, 'metadata request failed');
      if (!response.headersSent) reply(500, '500 Internal Server Error\n');
    }
  }

  private async metadataOf(networkId: string, address: string): Promise<InstanceMetadata | undefined> {
    const key = `${networkId} ${address}`;
    const cached = this.cache.get(key);
    if (cached && cached.until > Date.now()) return cached.metadata;
    const source = await this.resolver!(networkId, address);
    if (!source) return undefined;
    const metadata = new InstanceMetadata(source.instance, source.networkInfo);
    for (const [stale, entry] of this.cache) if (entry.until <= Date.now()) this.cache.delete(stale);
    this.cache.set(key, { until: Date.now() + CACHE_MS, metadata });
    return metadata;
  }
}

/** The request's body, or undefined when it is longer than `limit` bytes. */
async function readBody(request: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > limit) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Forwards signals to the orchestration API of the catalog (the root before `/v1/...`), as the guest. */
export function orchestrationForwarder(credential: ServiceCredential): SignalForwarder {
  const session = serviceSession(credential, 'orchestration');
  return async (path, token, contentType, body) => {
    const root = (await session.current()).url.replace(/\/v1(\/.*)?$/, '');
    const response = await fetch(`${root}${path}`, {
      method: 'POST',
      headers: {
        ...(token ? { 'x-auth-token': token } : {}),
        'content-type': contentType ?? 'application/json',
        accept: 'application/json',
      },
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(30_000),
    });
    return {
      status: response.status,
      contentType: response.headers.get('content-type') ?? 'text/plain',
      body: Buffer.from(await response.arrayBuffer()),
    };
  };
}

/** Finds the guest from the ports plugged on this host, and its data in the database and the network API. */
export function hostMetadataResolver(
  host: string,
  hostNetwork: HostNetwork,
  records: InstanceRecords,
  network: GuestNetworking,
): MetadataResolver {
  return async (networkId, address) => {
    const port = (await hostNetwork.plugged()).find(
      (candidate) => candidate.networkId === networkId && candidate.ips.includes(address),
    );
    if (!port) return undefined;
    const instance = await records.get(port.instanceUuid);
    if (!instance || instance.deletedAt || instance.host !== host) return undefined;
    return { instance: instanceSpecOf(instance), networkInfo: await network.vifsFor(instance) };
  };
}
