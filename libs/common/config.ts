import { hostname } from 'node:os';
import { resolve } from 'node:path';

/**
 * Every setting Novum reads from the environment, with the default that gives a working single host.
 * The README's configuration table documents exactly these names (a unit test holds the two together).
 */
export interface NovumConfig {
  dataDir: string;
  databaseUrl: string | undefined;
  databasePoolSize: number;
  amqpUrl: string | undefined;
  busHostQueueType: 'quorum' | 'classic';
  host: string;
  bindAddress: string;
  publicHost: string;
  region: string;
  logLevel: string;
  tokenExpirationSeconds: number;
  tokenCacheSeconds: number;
  identityUrl: string | undefined;
  adminPassword: string | undefined;
  demoPassword: string | undefined;
  imageSizeCap: number;
  imageProjectQuota: number;
  computeDrivers: string[];
  containerRuntime: string;
  kvmAccel: 'auto' | 'kvm' | 'tcg';
  kvmUser: string;
  serialProxyclientAddress: string;
  tunnelIp: string | undefined;
  liveMigrationInboundAddr: string | undefined;
  vxlanGroup: string;
  l3Agent: boolean;
  physicalInterfaces: Record<string, string>;
  consoleTokenTtlSeconds: number;
  fakeHosts: number;
  fakeHostSize: { vcpus: number; memoryMb: number; localGb: number };
  fakeSpawnSeconds: number;
  allocationRatios: { cpu: number; ram: number; disk: number };
  reportIntervalSeconds: number;
  serviceDownTimeSeconds: number;
  powerSyncIntervalSeconds: number;
  allowResizeToSameHost: boolean;
  resizeConfirmWindowSeconds: number;
  shelvedOffloadTimeSeconds: number;
  reclaimInstanceIntervalSeconds: number;
  servicePassword: string | undefined;
  authEncryptionKey: string | undefined;
  heatWaitconditionServerUrl: string;
  heatEnableStackAbandon: boolean;
  heatEnableStackAdopt: boolean;
  heatMaxSnapshotsPerStack: number;
  heatEngine: boolean;
  ports: {
    identity: number;
    compute: number;
    image: number;
    network: number;
    orchestration: number;
    serialProxy: number;
  };
}

interface Setting<K> {
  env: string;
  describe: string;
  default: string | undefined;
  parse: (raw: string) => K;
}

export class ConfigError extends Error {}

const text = (raw: string) => raw;
const port = (raw: string) => {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error('must be a TCP port (1-65535)');
  return n;
};
const positiveInt = (raw: string) => {
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error('must be a positive whole number');
  return n;
};
const nonNegativeInt = (raw: string) => {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error('must be a whole number >= 0');
  return n;
};
const bool = (raw: string) => {
  const value = raw.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(value)) return true;
  if (['false', '0', 'no', 'off'].includes(value)) return false;
  throw new Error('must be true or false');
};
const atLeastMinusOne = (raw: string) => {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < -1) throw new Error('must be a whole number >= -1');
  return n;
};
const urlWith =
  (...protocols: string[]) =>
  (raw: string) => {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new Error('must be a URL');
    }
    if (!protocols.includes(url.protocol)) throw new Error(`must be a ${protocols.join(' or ')} URL`);
    return raw;
  };
const logLevel = (raw: string) => {
  const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
  if (!levels.includes(raw)) throw new Error(`must be one of ${levels.join(', ')}`);
  return raw;
};

type Settings = { [K in keyof Omit<NovumConfig, 'ports'>]: Setting<NovumConfig[K]> } & {
  ports: { [P in keyof NovumConfig['ports']]: Setting<number> };
};

export const SETTINGS: Settings = {
  dataDir: {
    env: 'NOVUM_DATA_DIR',
    describe: 'Where the SQLite database, image store, guest disks, clouds.yaml and openrc live',
    default: './data',
    parse: (raw) => resolve(raw),
  },
  databaseUrl: {
    env: 'DATABASE_URL',
    describe: '`postgres://user@host:5432/db` switches from the embedded SQLite file to PostgreSQL',
    default: undefined,
    parse: urlWith('postgres:', 'postgresql:'),
  },
  databasePoolSize: {
    env: 'NOVUM_DATABASE_POOL_SIZE',
    describe:
      "PostgreSQL connections each process may hold (Nova's `[database] max_pool_size`); every process of a deployment together must stay under the server's `max_connections`",
    default: '20',
    parse: positiveInt,
  },
  amqpUrl: {
    env: 'AMQP_URL',
    describe:
      '`amqp://guest:guest@127.0.0.1:5672/vhost` switches the message bus from in-process to RabbitMQ',
    default: undefined,
    parse: urlWith('amqp:', 'amqps:'),
  },
  busHostQueueType: {
    env: 'NOVUM_BUS_HOST_QUEUE_TYPE',
    describe:
      'RabbitMQ type of a new per-host queue (`compute.<host>`): `classic` (one consumer, its host; cheap by the thousand) or `quorum` (replicated like the shared work queues, which are always quorum; a Raft group each, for a broker cluster sized for it). An existing queue of the other type is used as it is',
    default: 'classic',
    parse: (raw) => {
      if (raw !== 'quorum' && raw !== 'classic') throw new Error('must be quorum or classic');
      return raw;
    },
  },
  host: {
    env: 'NOVUM_HOST',
    describe: "This host's name (compute queue `compute.<host>`, service records)",
    default: hostname(),
    parse: text,
  },
  bindAddress: {
    env: 'NOVUM_BIND_ADDRESS',
    describe: 'Address the HTTP APIs listen on',
    default: '0.0.0.0',
    parse: text,
  },
  publicHost: {
    env: 'NOVUM_PUBLIC_HOST',
    describe: 'Host name or address the service catalog advertises to clients',
    default: '127.0.0.1',
    parse: text,
  },
  region: {
    env: 'NOVUM_REGION',
    describe: 'Region id of the catalog endpoints created at bootstrap',
    default: 'RegionOne',
    parse: text,
  },
  logLevel: {
    env: 'NOVUM_LOG_LEVEL',
    describe: 'fatal, error, warn, info, debug, trace or silent',
    default: 'info',
    parse: logLevel,
  },
  tokenExpirationSeconds: {
    env: 'NOVUM_TOKEN_EXPIRATION',
    describe: 'Lifetime of a Keystone token, in seconds',
    default: '3600',
    parse: positiveInt,
  },
  tokenCacheSeconds: {
    env: 'NOVUM_TOKEN_CACHE_SECONDS',
    describe: 'How long a service that validates tokens through the identity API caches an answer (0: never)',
    default: '5',
    parse: nonNegativeInt,
  },
  identityUrl: {
    env: 'NOVUM_IDENTITY_URL',
    describe:
      'Keystone URL (`http://host:5000/identity`) that a service running apart from identity validates tokens with; unset: validate in-process',
    default: undefined,
    parse: urlWith('http:', 'https:'),
  },
  adminPassword: {
    env: 'NOVUM_ADMIN_PASSWORD',
    describe:
      'Password of `admin` and `admin2` at first start (generated and written to the data dir when unset)',
    default: undefined,
    parse: text,
  },
  demoPassword: {
    env: 'NOVUM_DEMO_PASSWORD',
    describe: 'Password of the demo users at first start (generated when unset)',
    default: undefined,
    parse: text,
  },
  imageSizeCap: {
    env: 'NOVUM_IMAGE_SIZE_CAP',
    describe: 'Largest image the image service stores, in bytes (larger uploads get 413)',
    default: '1099511627776',
    parse: positiveInt,
  },
  imageProjectQuota: {
    env: 'NOVUM_IMAGE_PROJECT_QUOTA',
    describe: 'Bytes of image data each project may store (0: unlimited; over it, uploads get 413)',
    default: '0',
    parse: nonNegativeInt,
  },
  computeDrivers: {
    env: 'NOVUM_COMPUTE_DRIVERS',
    describe:
      'Comma-separated virt drivers this host offers (`fake`, `kvm`, `container`); a flavor without `novum:driver` runs on the first, and a host offering `fake` stands in for any `novum:driver` it does not offer',
    default: 'fake',
    parse: (raw) => {
      const drivers = raw.split(',').map((name) => name.trim());
      const unknown = drivers.filter((name) => !['fake', 'kvm', 'container'].includes(name));
      if (unknown.length) throw new Error(`unknown driver ${unknown.join(', ')} (fake, kvm or container)`);
      return drivers;
    },
  },
  containerRuntime: {
    env: 'NOVUM_CONTAINER_RUNTIME',
    describe:
      'The OCI runtime binary (`runc`, `crun` or a path to one) the container driver runs containers with; `auto`: crun where it is installed, else runc',
    default: 'auto',
    parse: text,
  },
  kvmAccel: {
    env: 'NOVUM_KVM_ACCEL',
    describe:
      "The accelerator of the kvm driver's guests: `auto` (hardware KVM when the CPU has vmx/svm and `/dev/kvm` opens, else TCG emulation), `kvm` or `tcg`",
    default: 'auto',
    parse: (raw) => {
      if (raw !== 'auto' && raw !== 'kvm' && raw !== 'tcg') throw new Error('must be auto, kvm or tcg');
      return raw;
    },
  },
  kvmUser: {
    env: 'NOVUM_KVM_USER',
    describe:
      "The unprivileged user each of the kvm driver's QEMU processes becomes once it has opened its disks, taps and sockets (QEMU's `-runas`; ops/install.sh creates it); `none`: QEMU keeps the agent's user",
    default: 'novum-qemu',
    parse: (raw) => (raw === 'none' ? '' : raw),
  },
  serialProxyclientAddress: {
    env: 'NOVUM_SERIAL_PROXYCLIENT_ADDRESS',
    describe:
      "Address of this host that the serial console proxy connects to for its guests' serial consoles (Nova's `[serial_console] proxyclient_address`): the compute agent's console relay listens there on a free port, and so does its disk transfer listener, which the destination of a cross-host cold migration or resize fetches the guest's disks from",
    default: '127.0.0.1',
    parse: text,
  },
  tunnelIp: {
    env: 'NOVUM_TUNNEL_IP',
    describe:
      "This compute host's address on the network between hosts (Neutron's `[vxlan] local_ip`): VXLAN networks then reach the same networks' guests on other hosts; unset: a network stays on its host",
    default: undefined,
    parse: text,
  },
  liveMigrationInboundAddr: {
    env: 'NOVUM_LIVE_MIGRATION_INBOUND_ADDR',
    describe:
      "Address of this host where the guests of live migrations to it arrive (Nova's `[libvirt] live_migration_inbound_addr`): the destination's QEMU listens there for the guest's state and serves its disks (NBD) for the copy; unset: NOVUM_TUNNEL_IP, else 127.0.0.1 (one machine)",
    default: undefined,
    parse: text,
  },
  vxlanGroup: {
    env: 'NOVUM_VXLAN_GROUP',
    describe:
      "Multicast group the hosts' VXLAN devices flood unknown destinations to (Neutron's `[vxlan] vxlan_group`)",
    default: '224.0.0.1',
    parse: text,
  },
  l3Agent: {
    env: 'NOVUM_L3_AGENT',
    describe:
      "Whether this compute host serves the cloud's routers and floating IPs (Neutron's L3 agent): true on exactly one host of a deployment",
    default: 'true',
    parse: bool,
  },
  physicalInterfaces: {
    env: 'NOVUM_PHYSICAL_INTERFACE_MAPPINGS',
    describe:
      "This compute host's interface of each physical network, `physnet1:eth1,physnet2:eth2` (Neutron linuxbridge's physical_interface_mappings): flat and VLAN networks on it leave the host there",
    default: '',
    parse: (raw) => {
      const mappings: Record<string, string> = {};
      for (const pair of raw
        .split(',')
        .map((item) => item.trim())
        .filter(Boolean)) {
        const [network, device, ...rest] = pair.split(':');
        if (!network || !device || rest.length || !/^[A-Za-z0-9_.@-]{1,15}$/.test(device))
          throw new Error(`must be physnet:interface pairs separated by commas, not ${pair}`);
        mappings[network] = device;
      }
      return mappings;
    },
  },
  consoleTokenTtlSeconds: {
    env: 'NOVUM_CONSOLE_TOKEN_TTL',
    describe:
      "Seconds a console URL's token admits a client to the serial console proxy (Nova's `[consoleauth] token_ttl`)",
    default: '600',
    parse: positiveInt,
  },
  fakeHosts: {
    env: 'NOVUM_FAKE_HOSTS',
    describe:
      'Compute agents on the fake driver this process runs: 1 is host `NOVUM_HOST`, more are `<host>-1` .. `<host>-N` (scale tests)',
    default: '1',
    parse: positiveInt,
  },
  fakeSpawnSeconds: {
    env: 'NOVUM_FAKE_SPAWN_SECONDS',
    describe:
      "Seconds the fake driver's spawn takes (0: at once), so that fault drills can stop an agent in the middle of a build",
    default: '0',
    parse: nonNegativeInt,
  },
  fakeHostSize: {
    env: 'NOVUM_FAKE_HOST_SIZE',
    describe: 'Size of each fake host as `vCPUs,RAM MB,disk GB` (before allocation ratios; capacity tests)',
    default: '1000,800000,600000',
    parse: (raw) => {
      const parts = raw.split(',');
      if (parts.length !== 3) throw new Error('must be three numbers: vCPUs,RAM MB,disk GB');
      const [vcpus, memoryMb, localGb] = parts.map((part) => positiveInt(part.trim()));
      return { vcpus, memoryMb, localGb };
    },
  },
  allocationRatios: {
    env: 'NOVUM_ALLOCATION_RATIOS',
    describe:
      "Overcommit of this host's resources as `vCPU,RAM,disk` ratios (Nova's initial_*_allocation_ratio; the scheduler fills a host up to its size times these)",
    default: '16,1.5,1.0',
    parse: (raw) => {
      const parts = raw.split(',').map((part) => Number(part.trim()));
      if (parts.length !== 3 || parts.some((n) => !Number.isFinite(n) || n <= 0)) {
        throw new Error('must be three positive numbers: vCPU,RAM,disk');
      }
      const [cpu, ram, disk] = parts;
      return { cpu, ram, disk };
    },
  },
  reportIntervalSeconds: {
    env: 'NOVUM_REPORT_INTERVAL',
    describe: 'Seconds between the heartbeats (and resource reports) of the conductor and compute agents',
    default: '10',
    parse: positiveInt,
  },
  serviceDownTimeSeconds: {
    env: 'NOVUM_SERVICE_DOWN_TIME',
    describe: 'A compute service silent for longer than this many seconds is `down` and gets no new servers',
    default: '60',
    parse: positiveInt,
  },
  powerSyncIntervalSeconds: {
    env: 'NOVUM_POWER_SYNC_INTERVAL',
    describe: "Seconds between a compute agent's power-state syncs of its guests with the database",
    default: '60',
    parse: positiveInt,
  },
  allowResizeToSameHost: {
    env: 'NOVUM_ALLOW_RESIZE_TO_SAME_HOST',
    describe:
      "Whether a resize may land on the server's own host (Nova's allow_resize_to_same_host, true as in devstack); a cold migration always moves",
    default: 'true',
    parse: bool,
  },
  resizeConfirmWindowSeconds: {
    env: 'NOVUM_RESIZE_CONFIRM_WINDOW',
    describe:
      "Seconds after which a compute agent confirms a resize nobody confirmed or reverted (Nova's resize_confirm_window; 0: never)",
    default: '0',
    parse: nonNegativeInt,
  },
  shelvedOffloadTimeSeconds: {
    env: 'NOVUM_SHELVED_OFFLOAD_TIME',
    describe:
      "Seconds a shelved server keeps its host before it is offloaded (Nova's shelved_offload_time; 0: at once, -1: never)",
    default: '0',
    parse: atLeastMinusOne,
  },
  reclaimInstanceIntervalSeconds: {
    env: 'NOVUM_RECLAIM_INSTANCE_INTERVAL',
    describe:
      "Seconds a soft-deleted server waits for a restore before its agent deletes it (Nova's reclaim_instance_interval; 0: no soft delete)",
    default: '0',
    parse: nonNegativeInt,
  },
  servicePassword: {
    env: 'NOVUM_SERVICE_PASSWORD',
    describe:
      'Password of the `nova` service user (project `service`, role admin) the compute agents upload snapshots with; unset: generated at first start and kept in `service-password` in the data dir',
    default: undefined,
    parse: text,
  },
  authEncryptionKey: {
    env: 'NOVUM_AUTH_ENCRYPTION_KEY',
    describe:
      "Key the orchestration service encrypts the credentials it keeps for stacks with (Heat's auth_encryption_key); generated into the data dir when unset",
    default: undefined,
    parse: text,
  },
  heatWaitconditionServerUrl: {
    env: 'NOVUM_HEAT_WAITCONDITION_SERVER_URL',
    describe:
      "The orchestration API's root as guests reach it, in the endpoints of wait condition handles (Heat's heat_waitcondition_server_url); the default is the metadata service, which forwards a guest's signal to the orchestration API",
    default: 'http://169.254.169.254/heat-api',
    parse: text,
  },
  heatEnableStackAbandon: {
    env: 'NOVUM_HEAT_ENABLE_STACK_ABANDON',
    describe:
      "Whether `openstack stack abandon` may remove a stack's record and leave its resources (Heat's enable_stack_abandon, off by default in Heat, on here: an operator moving stacks between clouds or engines expects it)",
    default: 'true',
    parse: bool,
  },
  heatEnableStackAdopt: {
    env: 'NOVUM_HEAT_ENABLE_STACK_ADOPT',
    describe:
      "Whether `openstack stack adopt` may make a stack of existing resources from abandon data (Heat's enable_stack_adopt, off by default in Heat, on here)",
    default: 'true',
    parse: bool,
  },
  heatEngine: {
    env: 'NOVUM_HEAT_ENGINE',
    describe:
      'Whether the orchestration API process also runs an engine (as heat-all); `false` leaves stack actions to engines started apart (`node dist/apps/orchestration/engine-main.js`), which take them from the bus',
    default: 'true',
    parse: bool,
  },
  heatMaxSnapshotsPerStack: {
    env: 'NOVUM_HEAT_MAX_SNAPSHOTS_PER_STACK',
    describe:
      "Snapshots a stack may have at once, for non-admins (Heat's max_snapshots_per_stack; -1: unlimited)",
    default: '32',
    parse: atLeastMinusOne,
  },

  ports: {
    identity: { env: 'NOVUM_IDENTITY_PORT', describe: 'Keystone API port', default: '5000', parse: port },
    compute: { env: 'NOVUM_COMPUTE_PORT', describe: 'Nova API port', default: '8774', parse: port },
    image: { env: 'NOVUM_IMAGE_PORT', describe: 'Glance API port', default: '9292', parse: port },
    network: { env: 'NOVUM_NETWORK_PORT', describe: 'Neutron API port', default: '9696', parse: port },
    orchestration: {
      env: 'NOVUM_ORCHESTRATION_PORT',
      describe: 'Heat API port',
      default: '8004',
      parse: port,
    },
    serialProxy: {
      env: 'NOVUM_SERIALPROXY_PORT',
      describe: 'Serial console proxy (websocket) port, as nova-serialproxy',
      default: '6083',
      parse: port,
    },
  },
};

function read<K>(setting: Setting<K>, env: NodeJS.ProcessEnv, problems: string[]): K {
  const raw = env[setting.env] === '' ? undefined : env[setting.env];
  const value = raw ?? setting.default;
  if (value === undefined) return undefined as K;
  try {
    return setting.parse(value);
  } catch (e) {
    problems.push(`${setting.env}=${JSON.stringify(value)}: ${(e as Error).message}`);
    return undefined as K;
  }
}

/** Reads and validates the whole configuration; throws one ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): NovumConfig {
  const problems: string[] = [];
  const { ports, ...scalars } = SETTINGS;
  const config: Record<string, unknown> = {};
  for (const [key, setting] of Object.entries(scalars))
    config[key] = read(setting as Setting<unknown>, env, problems);
  const portValues: Record<string, number> = {};
  for (const [key, setting] of Object.entries(ports)) portValues[key] = read(setting, env, problems);
  config.ports = portValues;
  if (problems.length) throw new ConfigError(`Invalid configuration:\n  ${problems.join('\n  ')}`);
  return config as unknown as NovumConfig;
}

/** All settings as a flat list, in the README table's order. */
export function listSettings(): Setting<unknown>[] {
  const { ports, ...scalars } = SETTINGS;
  return [...Object.values(scalars), ...Object.values(ports)] as Setting<unknown>[];
}

export const NOVUM_CONFIG = Symbol('NOVUM_CONFIG');
