import { Json, JsonMap } from '@novum/hot';
import { CloudError, CloudSession } from '../cloud';
import { findNeutron } from './neutron';
import { findImage, resize, server, serverActions, waitActive } from './nova';
import { ActionContext, ActionResult, PropertySchema, ResourceState, ResourceType } from './types';

/**
 * Heat's container resources (DockerInc::Docker::Container, OS::Zun::Container) as Novum servers on the
 * container driver: the smallest flavour with `novum:driver=container` that holds the memory and CPUs asked
 * for, a Glance image of container_format docker, and the command, environment, working directory, user,
 * read-only root and dropped capabilities as the `novum:*` server metadata the driver reads
 * (libs/virt/container/runtime-overrides.ts). What would widen a container's rights is refused at validation.
 */

type NovaObject = Record<string, Json>;

/** Docker's default capability set (libs/virt/container/oci-spec.ts), without the CAP_ prefix. */
const DEFAULT_CAPABILITIES = new Set([
  'CHOWN',
  'DAC_OVERRIDE',
  'FSETID',
  'FOWNER',
  'MKNOD',
  'NET_RAW',
  'SETGID',
  'SETUID',
  'SETFCAP',
  'SETPCAP',
  'NET_BIND_SERVICE',
  'SYS_CHROOT',
  'KILL',
  'AUDIT_WRITE',
]);

/** The capability names Heat's Docker plugin accepts in cap_add and cap_drop. */
const CAPABILITIES = [
  'SETPCAP',
  'SYS_MODULE',
  'SYS_RAWIO',
  'SYS_PACCT',
  'SYS_ADMIN',
  'SYS_NICE',
  'SYS_RESOURCE',
  'SYS_TIME',
  'SYS_TTY_CONFIG',
  'MKNOD',
  'AUDIT_WRITE',
  'AUDIT_CONTROL',
  'MAC_OVERRIDE',
  'MAC_ADMIN',
  'NET_ADMIN',
  'SYSLOG',
  'CHOWN',
  'NET_RAW',
  'DAC_OVERRIDE',
  'FOWNER',
  'DAC_READ_SEARCH',
  'FSETID',
  'KILL',
  'SETGID',
  'SETUID',
  'LINUX_IMMUTABLE',
  'NET_BIND_SERVICE',
  'NET_BROADCAST',
  'IPC_LOCK',
  'IPC_OWNER',
  'SYS_CHROOT',
  'SYS_PTRACE',
  'SYS_BOOT',
  'LEASE',
  'SETFCAP',
  'WAKE_ALARM',
  'BLOCK_SUSPEND',
  'ALL',
];

/** Nova's limit on a server metadata value, which carries the command and the environment. */
const METADATA_VALUE_MAX = 255;

const isEmpty = (value: Json) =>
  value === null ||
  value === '' ||
  (Array.isArray(value) && value.length === 0) ||
  (typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 0);

/** A check refusing any non-empty value: what would break the container's isolation (or Novum cannot do). */
const refuseNonEmpty =
  (why: string) =>
  (value: Json): string | null =>
    isEmpty(value) ? null : why;

const fitsMetadata = (what: string) => (value: Json) =>
  JSON.stringify(value).length > METADATA_VALUE_MAX
    ? `The ${what} is longer than the ${METADATA_VALUE_MAX} characters a server metadata value holds.`
    : null;

const ENV_ENTRY = /^[^=\s]+=/;
const PORT_SPEC = /^\d{1,5}(\/(tcp|udp))?$/;

/** `docker run` style restart policies; only "no" is honoured (the driver does not restart exited containers). */
const RESTART_UNSUPPORTED = 'is not supported: Novum does not restart a container that exited';

/** Splits a command line as a POSIX shell would into words (quotes and backslashes; no expansions). */
export function splitCommand(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote === "'") {
      if (c === "'") quote = null;
      else word += c;
    } else if (quote === '"') {
      if (c === '"') quote = null;
      else if (c === '\\' && i + 1 < line.length && '"\\$`'.includes(line[i + 1])) word += line[++i];
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < line.length) {
      word += line[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote) throw new Error(`No closing quotation in the command: ${line}`);
  if (inWord) words.push(word);
  return words;
}

interface ContainerSpec {
  name: string;
  hostname: string | null;
  image: string;
  memoryMb: number;
  vcpus: number;
  metadata: Record<string, string>;
  /** Nova's `networks` of the create request; absent: Nova's default network. */
  networks?: JsonMap[];
  securityGroups?: string[];
  schedulerHints?: JsonMap | null;
  /** The type has log attributes (Docker's), read from the console once the command has written some. */
  logs: boolean;
}

/** The flavours with `novum:driver=container`, smallest first (RAM, then vCPUs, then disk). */
async function containerFlavors(cloud: CloudSession): Promise<NovaObject[]> {
  const body = await cloud.request<{ flavors: NovaObject[] }>(
    'compute',
    'GET',
    '/flavors/detail?is_public=None',
    undefined,
    { 'OpenStack-API-Version': 'compute 2.61' },
  );
  return body.flavors
    .filter((f) => (f.extra_specs as Record<string, string> | undefined)?.['novum:driver'] === 'container')
    .sort(
      (a, b) =>
        (a.ram as number) - (b.ram as number) ||
        (a.vcpus as number) - (b.vcpus as number) ||
        (a.disk as number) - (b.disk as number) ||
        String(a.id).localeCompare(String(b.id)),
    );
}

/** The smallest container flavour with at least this memory and these vCPUs. */
async function pickContainerFlavor(
  cloud: CloudSession,
  memoryMb: number,
  vcpus: number,
): Promise<NovaObject> {
  const fitting = (await containerFlavors(cloud)).find(
    (f) => (f.ram as number) >= memoryMb && (f.vcpus as number) >= vcpus,
  );
  if (!fitting)
    throw new CloudError(
      404,
      `No flavor with novum:driver=container has ${memoryMb} MiB of RAM and ${vcpus} vCPUs.`,
      'compute',
    );
  return fitting;
}

/**
 * The flavor of a container: the smallest container flavor that fits; else, when Nova's policy lets the stack
 * owner make flavors (by default only admins), a private one of that size for the owner's project, which the
 * resource removes with its server (`own`). Neither: the 404 of pickContainerFlavor.
 */
export async function containerFlavor(
  cloud: CloudSession,
  name: string,
  memoryMb: number,
  vcpus: number,
): Promise<{ flavor: NovaObject; own: boolean }> {
  try {
    return { flavor: await pickContainerFlavor(cloud, memoryMb, vcpus), own: false };
  } catch (error) {
    if (!(error instanceof CloudError && error.status === 404)) throw error;
    let created: NovaObject;
    try {
      created = (
        await cloud.request<{ flavor: NovaObject }>('compute', 'POST', '/flavors', {
          flavor: {
            name,
            ram: Math.max(memoryMb, MIN_FLAVOR_RAM_MB),
            vcpus,
            disk: 1,
            'os-flavor-access:is_public': false,
          },
        })
      ).flavor;
    } catch (refused) {
      if (refused instanceof CloudError && refused.status === 403) throw error;
      throw refused;
    }
    try {
      await cloud.request('compute', 'POST', `/flavors/${created.id}/os-extra_specs`, {
        extra_specs: { 'novum:driver': 'container' },
      });
      await cloud.request('compute', 'POST', `/flavors/${created.id}/action`, {
        addTenantAccess: { tenant: cloud.projectId },
      });
    } catch (failed) {
      await dropFlavor(cloud, created.id as string);
      throw failed;
    }
    return { flavor: created, own: true };
  }
}

/** The smallest RAM of a flavor Novum makes for a container (what a container's runtime needs at least). */
const MIN_FLAVOR_RAM_MB = 64;

/** Removes a flavor the resource made (best effort: gone already, or the owner may no longer). */
async function dropFlavor(cloud: CloudSession, id: string): Promise<void> {
  try {
    await cloud.request('compute', 'DELETE', `/flavors/${id}`);
  } catch (error) {
    if (!(error instanceof CloudError && (error.status === 404 || error.status === 403))) throw error;
  }
}

/** A Glance image a container can run: container_format docker. */
async function containerImage(cloud: CloudSession, ref: string): Promise<NovaObject> {
  const image = await findImage(cloud, ref);
  if (image.container_format !== 'docker')
    throw new CloudError(
      400,
      `Image ${ref} is not a container image (container_format ${String(image.container_format)}, not docker).`,
      'image',
    );
  return image;
}

/** Creates the server, waits for ACTIVE and keeps what the attributes read (interfaces, gateway, first logs). */
async function createContainer(ctx: ActionContext, spec: ContainerSpec): Promise<ActionResult> {
  const cloud = await ctx.cloud();
  const image = await containerImage(cloud, spec.image);
  const { flavor, own } = await containerFlavor(cloud, ctx.physicalName, spec.memoryMb, spec.vcpus);
  const ownFlavor = own ? (flavor.id as string) : null;
  const request: JsonMap = {
    name: spec.name,
    imageRef: image.id,
    flavorRef: flavor.id,
    metadata: spec.metadata,
  };
  // Nova takes a host name apart from the server name from 2.90, where `networks` is required.
  const headers: Record<string, string> = spec.hostname ? { 'OpenStack-API-Version': 'compute 2.90' } : {};
  if (spec.hostname) request.hostname = spec.hostname;
  if (spec.networks) request.networks = spec.networks;
  else if (spec.hostname) request.networks = 'auto';
  if (spec.securityGroups?.length) request.security_groups = spec.securityGroups.map((name) => ({ name }));
  const body: JsonMap = { server: request };
  if (spec.schedulerHints) body['os:scheduler_hints'] = spec.schedulerHints;
  let id: string | null = null;
  try {
    const created = await cloud.request<{ server: NovaObject }>('compute', 'POST', '/servers', body, headers);
    id = created.server.id as string;
    await ctx.created?.(id, { flavor: flavor.id, own_flavor: ownFlavor });
    const { data } = await waitActive(ctx, cloud, id, {});
    const seen = await observe(ctx, cloud, id, spec.logs);
    return { physicalId: id, data: { ...data, ...seen, flavor: flavor.id, own_flavor: ownFlavor } };
  } catch (error) {
    // A server keeps its flavor's sizes when the flavor goes; the resource keeps the server's id, so that a
    // rollback or a delete removes the server.
    if (ownFlavor) await dropFlavor(cloud, ownFlavor);
    throw Object.assign(error as Error, id ? { physicalId: id } : {});
  }
}

/**
 * The container's ports (with their network names and gateways) and, for a type with log attributes, its
 * console output once it has some. A type without them does not wait: a command that writes nothing would
 * hold its create for the whole wait.
 */
async function observe(
  ctx: ActionContext,
  cloud: CloudSession,
  id: string,
  logged: boolean,
): Promise<JsonMap> {
  const { interfaceAttachments } = await cloud.request<{ interfaceAttachments: NovaObject[] }>(
    'compute',
    'GET',
    `/servers/${id}/os-interface`,
  );
  const interfaces: JsonMap[] = [];
  for (const attachment of interfaceAttachments) {
    const fixedIps = (attachment.fixed_ips as { subnet_id: string; ip_address: string }[]) ?? [];
    const network = await findNeutron(cloud, 'network', attachment.net_id as string);
    const subnet = fixedIps[0] ? await findNeutron(cloud, 'subnet', fixedIps[0].subnet_id) : null;
    interfaces.push({
      port: attachment.port_id,
      network_id: attachment.net_id,
      network_name: network.name,
      mac_address: attachment.mac_addr,
      fixed_ips: fixedIps,
      gateway: (subnet?.gateway_ip as Json) ?? null,
      prefix_length: subnet ? Number(String(subnet.cidr).split('/')[1]) : null,
    });
  }
  let logs = '';
  // The command's first words reach the console a moment after the container starts.
  for (let attempt = 0; logged && attempt < 20 && !logs; attempt++) {
    logs = await consoleOutput(cloud, id);
    if (!logs) await ctx.sleep(250);
  }
  return { interfaces, logs };
}

async function consoleOutput(cloud: CloudSession, id: string): Promise<string> {
  const body = await cloud.request<{ output: string }>('compute', 'POST', `/servers/${id}/action`, {
    'os-getConsoleOutput': {},
  });
  return body.output ?? '';
}

/** The server, then the flavor the resource made for it. */
async function deleteContainer(ctx: ActionContext, state: ResourceState): Promise<void> {
  await server.delete(ctx, state);
  if (state.data.own_flavor) await dropFlavor(await ctx.cloud(), state.data.own_flavor as string);
}

function interfacesOf(state: ResourceState): JsonMap[] {
  return (state.data.interfaces as JsonMap[] | undefined) ?? [];
}

function firstAddress(state: ResourceState): { ip: string | null; iface: JsonMap | null } {
  for (const iface of interfacesOf(state)) {
    const ips = iface.fixed_ips as { ip_address: string }[];
    const v4 = ips.find((ip) => !ip.ip_address.includes(':')) ?? ips[0];
    if (v4) return { ip: v4.ip_address, iface };
  }
  return { ip: null, iface: null };
}

function logLines(state: ResourceState): string[] {
  return String(state.data.logs ?? '')
    .replace(/\n$/, '')
    .split('\n');
}

// ---------------------------------------------------------------- DockerInc::Docker::Container

const refuseIsolation = (what: string) =>
  refuseNonEmpty(`${what} would break the container's isolation; Novum refuses it.`);
const refuseUnsupported = (what: string) => refuseNonEmpty(`${what} is not supported by Novum's containers.`);

const dockerProperties: Record<string, PropertySchema> = {
  docker_endpoint: {
    type: 'string',
    description:
      'Docker daemon endpoint (by default the local docker daemon will be used). Novum runs containers itself: only empty is accepted.',
    check: refuseIsolation('A Docker endpoint outside Novum'),
  },
  hostname: { type: 'string', description: 'Hostname of the container.', default: '' },
  user: { type: 'string', description: 'Username or UID.', default: '' },
  memory: {
    type: 'integer',
    description: 'Memory limit (Bytes); the container gets the smallest container flavor with this much RAM.',
    default: 0,
    check: (value) => ((value as number) < 0 ? 'The memory limit must be at least 0.' : null),
  },
  port_specs: {
    type: 'list',
    description:
      'TCP/UDP ports mapping. The container has its own address on its network; these ports are reachable there as its security groups allow.',
    item: {
      type: 'string',
      description: 'A port, optionally with /tcp or /udp.',
      check: (value) =>
        PORT_SPEC.test(String(value)) && Number(String(value).split('/')[0]) <= 65535
          ? null
          : `"${String(value)}" is not a port specification (port[/tcp|/udp]).`,
    },
  },
  port_bindings: {
    type: 'map',
    description: 'TCP/UDP ports bindings. Publishing on the host is not supported: only empty is accepted.',
    check: refuseUnsupported('Publishing container ports on the host (port_bindings)'),
  },
  links: {
    type: 'map',
    description: 'Links to other containers. Not supported: only empty is accepted.',
    check: refuseUnsupported('Linking containers (links)'),
  },
  name: { type: 'string', description: 'Name of the container.' },
  privileged: {
    type: 'boolean',
    description: 'Enable extended privileges. Refused: a privileged container breaks its isolation.',
    default: false,
    check: (value) =>
      value === true ? 'A privileged container would break its isolation; Novum refuses it.' : null,
  },
  tty: { type: 'boolean', description: 'Allocate a pseudo-tty.', default: false },
  open_stdin: { type: 'boolean', description: 'Open stdin.', default: false },
  stdin_once: {
    type: 'boolean',
    description: 'If true, close stdin after the 1 attached client disconnects.',
    default: false,
  },
  env: {
    type: 'list',
    description: 'Set environment variables (NAME=value).',
    item: {
      type: 'string',
      description: 'NAME=value',
      check: (value) => (ENV_ENTRY.test(String(value)) ? null : `"${String(value)}" is not NAME=value.`),
    },
    check: fitsMetadata('environment'),
  },
  cmd: {
    type: 'list',
    description: 'Command to run after spawning the container.',
    default: [],
    check: fitsMetadata('command'),
  },
  dns: {
    type: 'list',
    description:
      "Set custom dns servers. Not supported (the subnet's dns_nameservers apply): only empty is accepted.",
    check: refuseUnsupported('Custom DNS servers (dns)'),
  },
  image: { type: 'string', description: 'Image name.', required: true },
  volumes: {
    type: 'map',
    description: 'Create a bind mount. Refused: host directories in a container break its isolation.',
    default: {},
    check: refuseIsolation('Binding host directories (volumes)'),
  },
  volumes_from: {
    type: 'list',
    description: "Mount all specified volumes. Refused: another container's volumes break the isolation.",
    default: [],
    check: refuseIsolation("Mounting another container's volumes (volumes_from)"),
  },
  restart_policy: {
    type: 'map',
    description: 'Restart policies (only "no").',
    default: { Name: 'no', MaximumRetryCount: 0 },
    schema: {
      Name: {
        type: 'string',
        description: 'The behavior to apply when the container exits.',
        default: 'no',
        allowedValues: ['no', 'on-failure', 'always'],
        check: (value) =>
          value === 'no' ? null : `restart_policy "${String(value)}" ${RESTART_UNSUPPORTED}.`,
      },
      MaximumRetryCount: {
        type: 'integer',
        description: 'A maximum restart count for the on-failure policy.',
        default: 0,
      },
    },
  },
  cap_add: {
    type: 'list',
    description:
      "Be used to add kernel capabilities (only those of Docker's default set, which the container has).",
    default: [],
    item: {
      type: 'string',
      description: 'A capability.',
      allowedValues: CAPABILITIES,
      check: (value) =>
        DEFAULT_CAPABILITIES.has(String(value))
          ? null
          : `Adding capability ${String(value)} would break the container's isolation; only Docker's default set is allowed.`,
    },
  },
  cap_drop: {
    type: 'list',
    description: 'Be used to drop kernel capabilities.',
    default: [],
    item: { type: 'string', description: 'A capability.', allowedValues: CAPABILITIES },
  },
  read_only: {
    type: 'boolean',
    description: "If true, mount the container's root filesystem as read only.",
    default: false,
  },
  cpu_shares: {
    type: 'integer',
    description: 'Relative weight of the CPU shares (the flavor sets the CPU quota).',
    default: 0,
    check: (value) => ((value as number) < 0 ? 'cpu_shares must be at least 0.' : null),
  },
  devices: {
    type: 'list',
    description: 'Device mappings. Refused: host devices in a container break its isolation.',
    default: [],
    check: refuseIsolation('Host devices (devices)'),
  },
  cpu_set: {
    type: 'string',
    description: 'The CPUs in which to allow execution. Not supported: only empty is accepted.',
    check: refuseUnsupported('Pinning to host CPUs (cpu_set)'),
  },
};

/** The `novum:*` metadata that makes the driver run the Docker container's properties. */
export function dockerMetadata(props: JsonMap): Record<string, string> {
  const metadata: Record<string, string> = {};
  const cmd = (props.cmd as string[] | null) ?? [];
  if (cmd.length) metadata['novum:cmd'] = JSON.stringify(cmd);
  const env = (props.env as string[] | null) ?? [];
  if (env.length) metadata['novum:env'] = JSON.stringify(env);
  if (props.user) metadata['novum:user'] = props.user as string;
  if (props.read_only) metadata['novum:read_only'] = 'true';
  const drop = (props.cap_drop as string[] | null) ?? [];
  if (drop.length) metadata['novum:cap_drop'] = JSON.stringify(drop);
  return metadata;
}

function portsOf(props: JsonMap, protocol: 'tcp' | 'udp'): string {
  return ((props.port_specs as string[] | null) ?? [])
    .filter((spec) => (spec.split('/')[1] ?? 'tcp') === protocol)
    .map((spec) => spec.split('/')[0])
    .join(',');
}

function dockerNetworkInfo(state: ResourceState): JsonMap {
  const { ip, iface } = firstAddress(state);
  return {
    IPAddress: ip ?? '',
    IPPrefixLen: (iface?.prefix_length as Json) ?? 0,
    Gateway: (iface?.gateway as Json) ?? '',
    MacAddress: (iface?.mac_address as Json) ?? '',
    Networks: Object.fromEntries(
      interfacesOf(state).map((i) => [
        String(i.network_name),
        {
          NetworkID: i.network_id,
          EndpointID: i.port,
          Gateway: i.gateway,
          IPAddress: (i.fixed_ips as { ip_address: string }[])[0]?.ip_address ?? '',
          MacAddress: i.mac_address,
        },
      ]),
    ),
    TcpPorts: portsOf(state.properties, 'tcp'),
    UdpPorts: portsOf(state.properties, 'udp'),
  };
}

export const dockerContainer: ResourceType = {
  name: 'DockerInc::Docker::Container',
  description: 'A Docker container, run as a Novum server on the container driver.',
  properties: dockerProperties,
  attributes: {
    info: { description: 'Container info.' },
    network_info: { description: 'Container network info.' },
    network_ip: { description: 'Container ip address.' },
    network_gateway: { description: 'Container ip gateway.' },
    network_tcp_ports: { description: 'Container TCP ports.' },
    network_udp_ports: { description: 'Container UDP ports.' },
    logs: { description: 'Container logs.' },
    logs_head: { description: 'Container first logs line.' },
    logs_tail: { description: 'Container last logs line.' },
  },
  async create(ctx, props) {
    return createContainer(ctx, {
      name: (props.name as string | null) || ctx.physicalName,
      hostname: (props.hostname as string | null) || null,
      image: props.image as string,
      memoryMb: Math.ceil((props.memory as number) / (1024 * 1024)),
      vcpus: 1,
      metadata: dockerMetadata(props),
      logs: true,
    });
  },
  delete: deleteContainer,
  ...serverActions,
  attribute(state, name) {
    const view = (state.data.server as JsonMap | undefined) ?? {};
    const props = state.properties;
    switch (name) {
      case 'show':
        return view;
      case 'info':
        return {
          Id: state.physicalId,
          Name: `/${String(view.name ?? '')}`,
          Image: props.image,
          Config: {
            Hostname: (props.hostname as string | null) || (view.name as string | undefined) || '',
            User: props.user,
            Cmd: props.cmd,
            Env: props.env ?? [],
            Tty: props.tty,
            OpenStdin: props.open_stdin,
            Image: props.image,
          },
          State: { Running: view.status === 'ACTIVE', Status: String(view.status ?? '').toLowerCase() },
          HostConfig: {
            Memory: props.memory,
            CpuShares: props.cpu_shares,
            ReadonlyRootfs: props.read_only,
            CapAdd: props.cap_add,
            CapDrop: props.cap_drop,
            Privileged: false,
            RestartPolicy: props.restart_policy,
          },
          NetworkSettings: dockerNetworkInfo(state),
        };
      case 'network_info':
        return dockerNetworkInfo(state);
      case 'network_ip':
        return firstAddress(state).ip ?? '';
      case 'network_gateway':
        return (firstAddress(state).iface?.gateway as Json) ?? '';
      case 'network_tcp_ports':
        return portsOf(props, 'tcp');
      case 'network_udp_ports':
        return portsOf(props, 'udp');
      case 'logs':
        return String(state.data.logs ?? '');
      case 'logs_head':
        return logLines(state)[0];
      case 'logs_tail':
        return logLines(state).pop() ?? '';
      default:
        return null;
    }
  },
};

// ---------------------------------------------------------------- OS::Zun::Container

/** Heat's Zun restart policy check: "no", "on-failure[:max-retry]", "always" or "unless-stopped". */
function zunRestartPolicy(value: Json): string | null {
  const policy = String(value);
  const valid = /^(no|always|unless-stopped|on-failure(:\d*)?)$/.test(policy);
  if (!valid)
    return `restart_policy "${policy}" is invalid. Valid values are "no", "on-failure[:max-retry]", "always", and "unless-stopped".`;
  return policy === 'no' ? null : `restart_policy "${policy}" ${RESTART_UNSUPPORTED}.`;
}

const zunProperties: Record<string, PropertySchema> = {
  name: { type: 'string', description: 'Name of the container.', updateAllowed: true },
  image: { type: 'string', description: 'Name or ID of the image.', required: true },
  command: {
    type: 'string',
    description: 'Send command to the container.',
    check: (value) => {
      try {
        return fitsMetadata('command')(splitCommand(String(value)));
      } catch (error) {
        return (error as Error).message;
      }
    },
  },
  cpu: {
    type: 'number',
    description: 'The number of virtual cpus.',
    updateAllowed: true,
    check: (value) => ((value as number) <= 0 ? 'cpu must be greater than 0.' : null),
  },
  memory: {
    type: 'integer',
    description: 'The container memory size in MiB.',
    updateAllowed: true,
    check: (value) => ((value as number) <= 0 ? 'memory must be greater than 0.' : null),
  },
  environment: {
    type: 'map',
    description: 'The environment variables.',
    check: (value) => fitsMetadata('environment')(environmentList(value as JsonMap)),
  },
  workdir: {
    type: 'string',
    description: 'The working directory for commands to run in.',
    check: (value) => (String(value).startsWith('/') ? null : 'workdir must be an absolute path.'),
  },
  labels: { type: 'map', description: 'Adds a map of labels to a container. May be used multiple times.' },
  image_pull_policy: {
    type: 'string',
    description: 'The policy which determines if the image should be pulled prior to starting the container.',
    allowedValues: ['ifnotpresent', 'always', 'never'],
  },
  restart_policy: {
    type: 'string',
    description:
      'Restart policy to apply when a container exits. Possible values are "no", "on-failure[:max-retry]", "always", and "unless-stopped" (only "no" is supported).',
    check: zunRestartPolicy,
  },
  interactive: { type: 'boolean', description: 'Keep STDIN open even if not attached.' },
  image_driver: {
    type: 'string',
    description: 'The image driver to use to pull container image (images come from Glance).',
    allowedValues: ['docker', 'glance'],
    check: (value) =>
      value === 'docker'
        ? 'image_driver "docker" is not supported: container images come from Glance.'
        : null,
  },
  hints: { type: 'map', description: 'Arbitrary key-value pairs for scheduler to select host.' },
  hostname: { type: 'string', description: 'The hostname of the container.' },
  security_groups: { type: 'list', description: 'List of security group names or IDs.', default: [] },
  mounts: {
    type: 'list',
    description: 'A list of volumes mounted inside the container. Not supported (no volume service).',
    check: refuseUnsupported('Mounting volumes (mounts)'),
  },
  networks: {
    type: 'list',
    description: 'An ordered list of nics to be added to this container.',
    item: {
      type: 'map',
      description: 'A network to attach the container to.',
      schema: {
        network: { type: 'string', description: 'Name or ID of network to create a port on.' },
        port: { type: 'string', description: 'ID of an existing port to associate with this container.' },
        fixed_ip: {
          type: 'string',
          description: 'Fixed IP address to specify for the port created on the requested network.',
        },
      },
    },
  },
};

function environmentList(environment: JsonMap | null): string[] {
  return Object.entries(environment ?? {}).map(
    ([name, value]) => `${name}=${typeof value === 'string' ? value : JSON.stringify(value)}`,
  );
}

/** The server metadata of a Zun container: its labels and the `novum:*` keys the driver runs it by. */
export function zunMetadata(props: JsonMap): Record<string, string> {
  const metadata: Record<string, string> = Object.fromEntries(
    Object.entries((props.labels as JsonMap | null) ?? {}).map(([k, v]) => [
      k,
      typeof v === 'string' ? v : JSON.stringify(v),
    ]),
  );
  if (props.command) metadata['novum:cmd'] = JSON.stringify(splitCommand(props.command as string));
  const env = environmentList(props.environment as JsonMap | null);
  if (env.length) metadata['novum:env'] = JSON.stringify(env);
  if (props.workdir) metadata['novum:workdir'] = props.workdir as string;
  return metadata;
}

async function zunNetworks(cloud: CloudSession, items: JsonMap[] | null): Promise<JsonMap[] | undefined> {
  if (!items) return undefined;
  const nics: JsonMap[] = [];
  for (const item of items) {
    const nic: JsonMap = {};
    if (item.port) nic.port = (await findNeutron(cloud, 'port', item.port as string)).id;
    else if (item.network) nic.uuid = (await findNeutron(cloud, 'network', item.network as string)).id;
    else
      throw new Error(
        'One of the properties "network" or "port" should be set for a network of the container.',
      );
    if (item.fixed_ip) nic.fixed_ip = item.fixed_ip;
    nics.push(nic);
  }
  return nics;
}

/** Zun's addresses: per network id, and per network name too, `{addr, version, port, subnet_id}`. */
function zunAddresses(state: ResourceState): JsonMap {
  const out: Record<string, JsonMap[]> = {};
  for (const iface of interfacesOf(state)) {
    const entries = (iface.fixed_ips as { subnet_id: string; ip_address: string }[]).map((ip) => ({
      addr: ip.ip_address,
      version: ip.ip_address.includes(':') ? 6 : 4,
      port: iface.port,
      subnet_id: ip.subnet_id,
      preserve_on_delete: false,
    }));
    for (const key of [String(iface.network_id), String(iface.network_name)]) {
      out[key] = [...(out[key] ?? []), ...entries];
    }
  }
  return out;
}

export const zunContainer: ResourceType = {
  name: 'OS::Zun::Container',
  description: 'A Zun container, run as a Novum server on the container driver.',
  properties: zunProperties,
  attributes: {
    name: { description: 'Name of the container.' },
    addresses: {
      description:
        'A dict of all network addresses with corresponding port_id. Each network will have two keys in dict, they are network name and network id.',
    },
  },
  async create(ctx, props) {
    const cloud = await ctx.cloud();
    return createContainer(ctx, {
      name: (props.name as string | null) ?? ctx.physicalName,
      hostname: (props.hostname as string | null) || null,
      image: props.image as string,
      memoryMb: (props.memory as number | null) ?? 0,
      vcpus: Math.ceil((props.cpu as number | null) ?? 1),
      metadata: zunMetadata(props),
      networks: await zunNetworks(cloud, props.networks as JsonMap[] | null),
      securityGroups: props.security_groups as string[],
      schedulerHints: props.hints as JsonMap | null,
      logs: false,
    });
  },
  async update(ctx, state, props) {
    const cloud = await ctx.cloud();
    const id = state.physicalId as string;
    const data = { ...state.data };
    if (props.cpu !== state.properties.cpu || props.memory !== state.properties.memory) {
      const { flavor, own } = await containerFlavor(
        cloud,
        `${ctx.physicalName}-${Date.now().toString(36)}`,
        (props.memory as number | null) ?? 0,
        Math.ceil((props.cpu as number | null) ?? 1),
      );
      if (flavor.id !== state.data.flavor) {
        try {
          await resize(ctx, cloud, id, flavor.id as string);
        } catch (error) {
          if (own) await dropFlavor(cloud, flavor.id as string);
          throw error;
        }
        if (state.data.own_flavor) await dropFlavor(cloud, state.data.own_flavor as string);
        data.flavor = flavor.id;
        data.own_flavor = own ? (flavor.id as string) : null;
      }
    }
    const name = (props.name as string | null) ?? ctx.physicalName;
    const updated = await cloud.request<{ server: NovaObject }>('compute', 'PUT', `/servers/${id}`, {
      server: { name },
    });
    return {
      physicalId: id,
      data: { ...data, server: { ...(data.server as JsonMap), name: updated.server.name } },
    };
  },
  delete: deleteContainer,
  ...serverActions,
  attribute(state, name) {
    const view = (state.data.server as JsonMap | undefined) ?? {};
    if (name === 'show') return view;
    if (name === 'name') return view.name ?? null;
    if (name === 'addresses') return zunAddresses(state);
    return null;
  },
};
