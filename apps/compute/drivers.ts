import {
  ComputeDriver,
  ContainerDriver,
  FakeDriver,
  FakeDriverOptions,
  HostNetwork,
  KvmDriver,
} from '@novum/virt';

/**
 * The fake hypervisors of this process, by host. A fake guest lives in memory, so the hypervisor outlives
 * its agent: an agent stopped and started again in the same process finds its guests, as a real agent
 * finds its qemu processes and containers after a restart.
 */
const fakeHypervisors = new Map<string, FakeDriver>();

export function fakeHypervisor(host: string, options: FakeDriverOptions = {}): FakeDriver {
  let driver = fakeHypervisors.get(host);
  if (!driver) fakeHypervisors.set(host, (driver = new FakeDriver(options)));
  return driver;
}

/** Where the real drivers keep their state, and what they run with. */
export interface HostDriverSettings {
  dataDir: string;
  containerRuntime: string;
  /** NOVUM_KVM_ACCEL: `auto`, `kvm` or `tcg`. */
  kvmAccel?: string;
  /** NOVUM_KVM_USER: the user QEMU drops to; empty: none. */
  kvmUser?: string;
  /** The host's guest networking (bridges, veths, taps, nftables), for the drivers that plug ports. */
  network?: HostNetwork;
}

/** The drivers NOVUM_COMPUTE_DRIVERS names for one host. */
export function createDrivers(
  names: readonly string[],
  host: string,
  fake: FakeDriverOptions = {},
  settings?: HostDriverSettings,
): ComputeDriver[] {
  return names.map((name) => {
    if (name === 'fake') return fakeHypervisor(host, fake);
    if (name === 'container' && settings) {
      return new ContainerDriver({
        dataDir: settings.dataDir,
        runtime: settings.containerRuntime,
        network: settings.network,
      });
    }
    if (name === 'kvm' && settings) {
      return new KvmDriver({
        dataDir: settings.dataDir,
        accel: settings.kvmAccel,
        runAs: settings.kvmUser,
        network: settings.network,
      });
    }
    throw new Error(`The ${name} driver is not available yet; set NOVUM_COMPUTE_DRIVERS=fake`);
  });
}

/** Host names of the agents one process runs: the host itself, or `<host>-1..N` for several fake hosts. */
export function agentHosts(host: string, fakeHosts: number): string[] {
  if (fakeHosts <= 1) return [host];
  return Array.from({ length: fakeHosts }, (_, i) => `${host}-${i + 1}`);
}
