import { afterAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Vif } from '../driver';
import { GuestPaths, probeAccelerator, qemuArgs, shellQuote, vifNetdevArgs } from './qemu-command';

const paths: GuestPaths = {
  pidfile: '/d/qemu.pid',
  qmpSocket: '/d/qmp.sock',
  serialSocket: '/d/serial.sock',
  consoleLog: '/d/console.log',
  rootDisk: '/d/disk',
  configDrive: '/d/disk.config',
};
const input = {
  uuid: '6f1c3d2e-8a4b-4c5d-9e6f-0a1b2c3d4e5f',
  name: 'instance-6f1c3d2e',
  flavor: { vcpus: 2, memoryMb: 512 },
  accel: 'tcg' as const,
  paths,
  vifs: [],
  sandbox: true,
};
const vif: Vif = {
  id: 'port-1',
  macAddress: 'fa:16:3e:00:00:01',
  networkId: 'net-1',
  fixedIps: [],
  bridge: 'novumbr0',
  mtu: 1450,
  devname: 'tapport-1',
};

/** The value after each occurrence of `option`. */
const values = (args: string[], option: string) =>
  args.flatMap((arg, i) => (arg === option ? [args[i + 1]] : []));

describe('qemuArgs', () => {
  it('runs a daemonized pc machine with the flavour, pidfile, QMP socket and serial socket and log', () => {
    const args = qemuArgs(input);
    expect(values(args, '-machine')).toEqual(['pc']);
    expect(values(args, '-accel')).toEqual(['tcg,tb-size=128']);
    expect(values(args, '-cpu')).toEqual(['qemu64']);
    expect(values(args, '-smp')).toEqual(['2']);
    expect(values(args, '-m')).toEqual(['512M']);
    expect(values(args, '-uuid')).toEqual([input.uuid]);
    expect(values(args, '-name')).toEqual(['guest=instance-6f1c3d2e,debug-threads=on']);
    expect(args).toContain('-daemonize');
    expect(args).toContain('-nodefaults');
    expect(values(args, '-pidfile')).toEqual(['/d/qemu.pid']);
    expect(values(args, '-qmp')).toEqual(['unix:/d/qmp.sock,server=on,wait=off']);
    expect(values(args, '-chardev')).toEqual([
      'socket,id=console,path=/d/serial.sock,server=on,wait=off,logfile=/d/console.log,logappend=on',
    ]);
    expect(values(args, '-serial')).toEqual(['chardev:console']);
    expect(values(args, '-sandbox')).toEqual(['on,obsolete=deny,resourcecontrol=deny']);
    expect(args).not.toContain('-incoming');
  });

  it('uses the host CPU under KVM', () => {
    const args = qemuArgs({ ...input, accel: 'kvm' });
    expect(values(args, '-accel')).toEqual(['kvm']);
    expect(values(args, '-cpu')).toEqual(['host']);
  });

  it('attaches the root disk first and bootable, then ephemeral, swap and the read-only config drive, all virtio', () => {
    const args = qemuArgs({
      ...input,
      paths: { ...paths, ephemeralDisk: '/d/disk.eph0', swapDisk: '/d/disk.swap' },
    });
    expect(values(args, '-blockdev')).toEqual([
      'driver=qcow2,node-name=root,file.driver=file,file.filename=/d/disk',
      'driver=qcow2,node-name=ephemeral0,file.driver=file,file.filename=/d/disk.eph0',
      'driver=qcow2,node-name=swap,file.driver=file,file.filename=/d/disk.swap',
      'driver=raw,node-name=config,file.driver=file,file.filename=/d/disk.config,read-only=on,file.read-only=on',
    ]);
    expect(values(args, '-device')).toEqual([
      'virtio-blk-pci,drive=root,id=root-disk,bootindex=1',
      'virtio-blk-pci,drive=ephemeral0,id=ephemeral0-disk',
      'virtio-blk-pci,drive=swap,id=swap-disk',
      'virtio-blk-pci,drive=config,id=config-disk',
    ]);
  });

  it('boots a rescued guest from the rescue disk, its own root disk second, no ephemeral or swap', () => {
    const args = qemuArgs({
      ...input,
      flavor: { vcpus: 3, memoryMb: 768 },
      paths: {
        ...paths,
        ephemeralDisk: '/d/disk.eph0',
        swapDisk: '/d/disk.swap',
        rescueDisk: '/d/disk.rescue',
        configDrive: '/d/disk.config.rescue',
      },
    });
    expect(values(args, '-blockdev')).toEqual([
      'driver=qcow2,node-name=rescue,file.driver=file,file.filename=/d/disk.rescue',
      'driver=qcow2,node-name=root,file.driver=file,file.filename=/d/disk',
      'driver=raw,node-name=config,file.driver=file,file.filename=/d/disk.config.rescue,read-only=on,file.read-only=on',
    ]);
    expect(values(args, '-device')).toEqual([
      'virtio-blk-pci,drive=rescue,id=rescue-disk,bootindex=1',
      'virtio-blk-pci,drive=root,id=root-disk',
      'virtio-blk-pci,drive=config,id=config-disk',
    ]);
    expect(values(args, '-smp')).toEqual(['3']);
    expect(values(args, '-m')).toEqual(['768M']);
  });

  it('doubles commas in paths, as QEMU option values need', () => {
    const args = qemuArgs({ ...input, paths: { ...paths, rootDisk: '/a,b/disk' } });
    expect(values(args, '-blockdev')[0]).toBe(
      'driver=qcow2,node-name=root,file.driver=file,file.filename=/a,,b/disk',
    );
  });

  it('has no NIC without ports, and a virtio NIC on a tap per port with a device name', () => {
    expect(values(qemuArgs(input), '-nic')).toEqual(['none']);
    const args = qemuArgs({ ...input, vifs: [vif, { ...vif, devname: undefined }] });
    expect(values(args, '-nic')).toEqual([]);
    expect(values(args, '-netdev')).toEqual(['tap,id=net0,ifname=tapport-1,script=no,downscript=no']);
    expect(values(args, '-device')).toContain(
      'virtio-net-pci,netdev=net0,mac=fa:16:3e:00:00:01,host_mtu=1450',
    );
  });

  it('restores a suspended guest paused, from its state file', () => {
    const args = qemuArgs({ ...input, incomingStateFile: "/d/it's.state", sandbox: false });
    expect(args).toContain('-S');
    expect(values(args, '-incoming')).toEqual([`exec:cat '/d/it'\\''s.state'`]);
    expect(args).not.toContain('-sandbox');
  });
});

describe('vifNetdevArgs', () => {
  it('names the netdev by the port index', () => {
    expect(vifNetdevArgs(vif, 3)).toEqual([
      '-netdev',
      'tap,id=net3,ifname=tapport-1,script=no,downscript=no',
      '-device',
      'virtio-net-pci,netdev=net3,mac=fa:16:3e:00:00:01,host_mtu=1450',
    ]);
  });
});

describe('shellQuote', () => {
  it('quotes a word for /bin/sh', () => {
    expect(shellQuote('a b')).toBe("'a b'");
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
  });
});

describe('probeAccelerator', () => {
  const dir = mkdtempSync(join(tmpdir(), 'novum-accel-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const files = (flags: string, kvmExists: boolean) => {
    const cpuinfo = join(dir, `cpuinfo-${flags.replace(/\W/g, '') || 'none'}`);
    writeFileSync(cpuinfo, `processor\t: 0\nflags\t\t: fpu ${flags} sse2\n\n`);
    const kvm = join(dir, kvmExists ? 'kvm' : 'no-kvm');
    if (kvmExists) writeFileSync(kvm, '');
    return { cpuinfo, kvm };
  };

  it('picks KVM only when the CPU has vmx or svm and /dev/kvm opens', async () => {
    expect(await probeAccelerator(undefined, files('vmx', true))).toBe('kvm');
    expect(await probeAccelerator(undefined, files('svm', true))).toBe('kvm');
    expect(await probeAccelerator(undefined, files('', true))).toBe('tcg');
    expect(await probeAccelerator(undefined, files('vmx', false))).toBe('tcg');
  });

  it('follows an override that names an accelerator', async () => {
    expect(await probeAccelerator('tcg', files('vmx', true))).toBe('tcg');
    expect(await probeAccelerator('kvm', files('', false))).toBe('kvm');
    expect(await probeAccelerator('auto', files('', true))).toBe('tcg');
  });
});
