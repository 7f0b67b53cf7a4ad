import { Inject, Injectable } from '@nestjs/common';
import { AuthContext } from '@novum/auth';
import {
  ApiError,
  apiFetch,
  NOVUM_CONFIG,
  NovumConfig,
  publicUrl,
  rootLogger,
  ServiceUnavailableError,
} from '@novum/common';

/** What the image service says of an image (Glance v2 fields the compute API uses). */
export interface GlanceImage {
  id: string;
  name: string | null;
  status: string;
  disk_format: string | null;
  container_format: string | null;
  min_disk: number;
  min_ram: number;
  size: number | null;
  visibility: string;
  owner: string | null;
  [property: string]: unknown;
}

export interface NeutronNetwork {
  id: string;
  name: string;
  project_id: string;
  shared: boolean;
  'router:external': boolean;
  status: string;
  subnets: string[];
}

export interface NeutronPort {
  id: string;
  network_id: string;
  mac_address: string;
  device_id: string;
  device_owner: string;
  project_id: string;
  fixed_ips: { subnet_id: string; ip_address: string }[];
  security_groups: string[];
  status: string;
}

export interface NeutronSecurityGroup {
  id: string;
  name: string;
  project_id: string;
}

/** An answer of a peer service that is not 2xx, kept with its status for the caller to translate. */
export class PeerError extends Error {
  override name = 'PeerError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const TIMEOUT_MS = 30_000;

/**
 * The image and network services as the compute API calls them: over their public HTTP APIs with the
 * caller's own token, as Nova calls Glance and Neutron, so that their policies apply to the caller.
 */
@Injectable()
export class PeerServices {
  private readonly log = rootLogger().child({ service: 'compute-api', component: 'peers' });
  private readonly imageUrl: string;
  private readonly networkUrl: string;

  constructor(@Inject(NOVUM_CONFIG) config: NovumConfig) {
    this.imageUrl = publicUrl(config, config.ports.image, 'image');
    this.networkUrl = publicUrl(config, config.ports.network, 'network');
  }

  /** The image, or null when the caller cannot see it. */
  async image(auth: AuthContext, id: string): Promise<GlanceImage | null> {
    try {
      return await this.request<GlanceImage>(auth, 'image', 'GET', `/v2/images/${encodeURIComponent(id)}`);
    } catch (error) {
      if (error instanceof PeerError && (error.status === 404 || error.status === 400)) return null;
      throw error;
    }
  }

  /** A queued image record (createImage, shelve): its data comes later from the host's agent. */
  async createImage(auth: AuthContext, image: Record<string, unknown>): Promise<GlanceImage> {
    return this.request<GlanceImage>(auth, 'image', 'POST', '/v2/images', image);
  }

  async network(auth: AuthContext, id: string): Promise<NeutronNetwork | null> {
    try {
      const body = await this.request<{ network: NeutronNetwork }>(
        auth,
        'network',
        'GET',
        `/v2.0/networks/${encodeURIComponent(id)}`,
      );
      return body.network;
    } catch (error) {
      if (error instanceof PeerError && (error.status === 404 || error.status === 400)) return null;
      throw error;
    }
  }

  /** Networks the project may boot on: its own and the shared ones, never external ones (Nova's auto). */
  async availableNetworks(auth: AuthContext): Promise<NeutronNetwork[]> {
    const own = await this.request<{ networks: NeutronNetwork[] }>(
      auth,
      'network',
      'GET',
      `/v2.0/networks?project_id=${encodeURIComponent(auth.projectId ?? '')}&shared=false`,
    );
    const shared = await this.request<{ networks: NeutronNetwork[] }>(
      auth,
      'network',
      'GET',
      '/v2.0/networks?shared=true',
    );
    return [...own.networks, ...shared.networks].filter((network) => !network['router:external']);
  }

  async networksById(auth: AuthContext, ids: string[]): Promise<Map<string, NeutronNetwork>> {
    const found = new Map<string, NeutronNetwork>();
    if (!ids.length) return found;
    const query = [...new Set(ids)].map((id) => `id=${encodeURIComponent(id)}`).join('&');
    const body = await this.request<{ networks: NeutronNetwork[] }>(
      auth,
      'network',
      'GET',
      `/v2.0/networks?${query}`,
    );
    for (const network of body.networks) found.set(network.id, network);
    return found;
  }

  async port(auth: AuthContext, id: string): Promise<NeutronPort | null> {
    try {
      const body = await this.request<{ port: NeutronPort }>(
        auth,
        'network',
        'GET',
        `/v2.0/ports/${encodeURIComponent(id)}`,
      );
      return body.port;
    } catch (error) {
      if (error instanceof PeerError && (error.status === 404 || error.status === 400)) return null;
      throw error;
    }
  }

  async createPort(auth: AuthContext, port: Record<string, unknown>): Promise<NeutronPort> {
    const body = await this.request<{ port: NeutronPort }>(auth, 'network', 'POST', '/v2.0/ports', { port });
    return body.port;
  }

  async updatePort(auth: AuthContext, id: string, port: Record<string, unknown>): Promise<NeutronPort> {
    const body = await this.request<{ port: NeutronPort }>(
      auth,
      'network',
      'PUT',
      `/v2.0/ports/${encodeURIComponent(id)}`,
      { port },
    );
    return body.port;
  }

  /** Deletes a port; one already gone is fine. */
  async deletePort(auth: AuthContext, id: string): Promise<void> {
    try {
      await this.request(auth, 'network', 'DELETE', `/v2.0/ports/${encodeURIComponent(id)}`);
    } catch (error) {
      if (error instanceof PeerError && error.status === 404) return;
      throw error;
    }
  }

  async securityGroups(auth: AuthContext): Promise<NeutronSecurityGroup[]> {
    const body = await this.request<{ security_groups: NeutronSecurityGroup[] }>(
      auth,
      'network',
      'GET',
      `/v2.0/security-groups?project_id=${encodeURIComponent(auth.projectId ?? '')}`,
    );
    return body.security_groups;
  }

  /** A call of the proxy APIs (images, security groups, networks): the peer's answer, or a PeerError. */
  call<T>(
    auth: AuthContext,
    service: 'image' | 'network',
    method: string,
    path: string,
    body?: unknown,
    contentType?: string,
  ): Promise<T> {
    return this.request<T>(auth, service, method, path, body, contentType);
  }

  private async request<T>(
    auth: AuthContext,
    service: 'image' | 'network',
    method: string,
    path: string,
    body?: unknown,
    contentType = 'application/json',
  ): Promise<T> {
    const base = service === 'image' ? this.imageUrl : this.networkUrl;
    let response: Response;
    try {
      response = await apiFetch(`${base}${path}`, {
        method,
        headers: {
          'x-auth-token': auth.token,
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': contentType }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (error) {
      this.log.warn({ err: error, service, path }, 'peer service unreachable');
      throw new ServiceUnavailableError(`The ${service} service is not available.`);
    }
    const text = await response.text();
    if (!response.ok) {
      throw new PeerError(response.status, peerMessage(text) ?? `${service} answered ${response.status}`);
    }
    return (text ? JSON.parse(text) : undefined) as T;
  }
}

/** The message of an OpenStack fault body (`{"NeutronError": {"message"}}`, `{"itemNotFound": {"message"}}`). */
function peerMessage(text: string): string | undefined {
  try {
    const body = JSON.parse(text) as Record<string, unknown>;
    for (const value of Object.values(body)) {
      if (value && typeof value === 'object' && 'message' in value) {
        return String((value as { message: unknown }).message);
      }
    }
  } catch {
    // not JSON: no message to pass on
  }
  return undefined;
}

/** A peer's refusal as the compute API answers it: the same status class, Nova's fault body. */
export function asApiError(error: unknown): unknown {
  if (!(error instanceof PeerError)) return error;
  return new ApiError(error.status >= 500 ? 503 : error.status, error.message);
}
