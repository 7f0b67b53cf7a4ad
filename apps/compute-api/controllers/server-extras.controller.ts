import { Body, Controller, Delete, Get, HttpCode, Param, Post, Res } from '@nestjs/common';
import { Auth, AuthContext, hasRole, isAdmin } from '@novum/auth';
import { BadRequestError, ConflictError, NotFoundError } from '@novum/common';
import { InstanceEntity } from '@novum/db';
import { VmState } from '@novum/virt';
import type { FastifyReply } from 'fastify';
import { In } from 'typeorm';
import { ApiVersion, Microversion } from '../microversion';
import { asApiError, PeerServices } from '../peers';
import { allow } from '../policy';
import { checkString, invalid, isObject, onlyKeys, requireObject, UUID } from '../server-schemas';
import { ServerLifecycleActions } from '../server-lifecycle';
import { requestIdNow, ServerService } from '../server.service';

const member = (auth: AuthContext) => hasRole(auth, 'member') || isAdmin(auth);

/** Nova's external event names (os-server-external-events). */
const EVENT_NAMES = [
  'network-changed',
  'network-vif-plugged',
  'network-vif-unplugged',
  'network-vif-deleted',
  'volume-extended',
  'power-update',
  'accelerator-request-bound',
  'volume-reimaged',
];

/** Diagnostics (admin), remote consoles, interface attach/detach and external events. */
@Controller('v2.1')
export class ServerExtrasController {
  constructor(
    private readonly servers: ServerService,
    private readonly lifecycle: ServerLifecycleActions,
    private readonly peers: PeerServices,
  ) {}

  @Get('servers/:id/diagnostics')
  async diagnostics(@Auth() auth: AuthContext, @Param('id') id: string, @Microversion() v: ApiVersion) {
    allow('os_compute_api:os-server-diagnostics', isAdmin(auth));
    const instance = await this.servers.get(auth, id);
    if (!instance.host || instance.vmState === VmState.BUILDING) {
      throw new ConflictError(
        `Cannot 'get_diagnostics' instance ${instance.uuid} while it is in vm_state ${instance.vmState}`,
      );
    }
    const d = await this.servers.rpc.getDiagnostics(instance.host, { instanceUuid: instance.uuid });
    if (!v.atLeast('2.48')) {
      // Before 2.48 the format was the driver's own; Nova's libvirt keys are the common subset.
      const legacy: Record<string, number> = { memory: d.memory.maximumMb * 1024 };
      d.cpus.forEach((cpu) => (legacy[`cpu${cpu.id}_time`] = cpu.timeNs));
      return legacy;
    }
    return {
      state: d.state,
      // Nova's diagnostics name the driver family; ours are libvirt's (QEMU/KVM and LXC) in kind.
      driver: 'libvirt',
      hypervisor: d.hypervisor,
      hypervisor_os: d.hypervisorOs,
      uptime: d.uptimeSeconds,
      config_drive: d.configDrive,
      num_cpus: d.cpus.length,
      num_nics: d.nics.length,
      num_disks: d.disks.length,
      cpu_details: d.cpus.map((cpu) => ({ id: cpu.id, time: cpu.timeNs, utilisation: cpu.utilisation })),
      nic_details: d.nics.map((nic) => ({
        mac_address: nic.macAddress,
        rx_octets: nic.rxOctets,
        rx_errors: nic.rxErrors,
        rx_drop: nic.rxDrop,
        rx_packets: nic.rxPackets,
        rx_rate: null,
        tx_octets: nic.txOctets,
        tx_errors: nic.txErrors,
        tx_drop: nic.txDrop,
        tx_packets: nic.txPackets,
        tx_rate: null,
      })),
      disk_details: d.disks.map((disk) => ({
        read_bytes: disk.readBytes,
        read_requests: disk.readRequests,
        write_bytes: disk.writeBytes,
        write_requests: disk.writeRequests,
        errors_count: disk.errorsCount,
      })),
      memory_details: { maximum: d.memory.maximumMb, used: d.memory.usedMb },
    };
  }

  /** 2.6 remote consoles: only the serial console exists here (no VNC/SPICE/RDP/MKS). */
  @Post('servers/:id/remote-consoles')
  @HttpCode(200)
  async remoteConsole(
    @Auth() auth: AuthContext,
    @Param('id') id: string,
    @Body() body: unknown,
    @Microversion() v: ApiVersion,
  ) {
    if (!v.atLeast('2.6')) throw new NotFoundError('The resource could not be found.');
    allow('os_compute_api:os-remote-consoles', member(auth));
    const root = requireObject('root', body);
    onlyKeys('root', root, ['remote_console']);
    const args = requireObject('remote_console', root.remote_console);
    onlyKeys('remote_console', args, ['protocol', 'type']);
    const protocols = ['vnc', 'spice', 'serial', 'rdp', ...(v.atLeast('2.8') ? ['mks'] : [])];
    if (typeof args.protocol !== 'string' || !protocols.includes(args.protocol)) {
      throw invalid('protocol', args.protocol, `is not one of ${JSON.stringify(protocols)}`);
    }
    const types = [
      'novnc',
      'xvpvnc',
      'rdp-html5',
      'spice-html5',
      'serial',
      ...(v.atLeast('2.8') ? ['webmks'] : []),
    ];
    if (typeof args.type !== 'string' || !types.includes(args.type)) {
      throw invalid('type', args.type, `is not one of ${JSON.stringify(types)}`);
    }
    const instance = await this.servers.get(auth, id);
    if (args.protocol !== 'serial' || args.type !== 'serial') {
      throw new BadRequestError(`Unavailable console type ${String(args.type)}.`);
    }
    return {
      remote_console: { protocol: 'serial', type: 'serial', url: await this.lifecycle.serialUrl(instance) },
    };
  }

  @Post('servers/:id/os-interface')
  async attachInterface(@Auth() auth: AuthContext, @Param('id') id: string, @Body() body: unknown) {
    allow('os_compute_api:os-attach-interfaces:create', member(auth));
    const root = requireObject('root', body);
    onlyKeys('root', root, ['interfaceAttachment']);
    const args = requireObject('interfaceAttachment', root.interfaceAttachment ?? {});
    onlyKeys('interfaceAttachment', args, ['net_id', 'port_id', 'fixed_ips', 'tag']);
    const instance = await this.servers.get(auth, id);
    this.servers.checkLocked(auth, instance);
    if (
      ![VmState.ACTIVE, VmState.PAUSED, VmState.STOPPED].includes(instance.vmState as never) ||
      instance.taskState
    ) {
      throw new ConflictError(
        `Cannot 'attach_interface' instance ${instance.uuid} while it is in vm_state ${instance.vmState}`,
      );
    }
    let port;
    try {
      if (args.port_id !== undefined) {
        if (typeof args.port_id !== 'string' || !UUID.test(args.port_id))
          throw invalid('port_id', args.port_id, "is not a 'uuid'");
        const existing = await this.peers.port(auth, args.port_id);
        if (!existing) throw new NotFoundError(`Port ${args.port_id} could not be found.`);
        if (existing.device_id) throw new ConflictError(`Port ${args.port_id} is still in use.`);
        port = await this.peers.updatePort(auth, args.port_id, {
          device_id: instance.uuid,
          device_owner: 'compute:nova',
        });
      } else {
        let netId = args.net_id;
        if (netId === undefined) {
          const available = await this.peers.availableNetworks(auth);
          if (available.length !== 1)
            throw new BadRequestError(
              'Multiple possible networks found, use a Network ID to be more specific.',
            );
          netId = available[0].id;
        }
        const networkId = checkString('net_id', netId, 1, 255);
        const network = await this.peers.network(auth, networkId);
        if (!network) throw new NotFoundError(`Network ${networkId} could not be found.`);
        const fixed = Array.isArray(args.fixed_ips)
          ? args.fixed_ips.map((ip) => ({ ip_address: isObject(ip) ? ip.ip_address : ip }))
          : undefined;
        port = await this.peers.createPort(auth, {
          network_id: networkId,
          device_id: instance.uuid,
          device_owner: 'compute:nova',
          ...(fixed ? { fixed_ips: fixed } : {}),
        });
      }
    } catch (error) {
      throw asApiError(error);
    }
    const network = await this.peers.network(auth, port.network_id);
    const vif = {
      portId: port.id,
      networkId: port.network_id,
      networkName: network?.name ?? port.network_id,
      macAddress: port.mac_address,
      ips: port.fixed_ips.map((ip) => ({
        address: ip.ip_address,
        version: (ip.ip_address.includes(':') ? 6 : 4) as 4 | 6,
      })),
      preexisting: args.port_id !== undefined,
      tag: typeof args.tag === 'string' ? args.tag : null,
    };
    await this.servers.records.startAction(instance.uuid, 'attach_interface', requestIdNow(), {
      userId: auth.userId,
      projectId: auth.projectId,
    });
    await this.servers.records.update(instance.uuid, { networkInfo: [...(instance.networkInfo ?? []), vif] });
    return {
      interfaceAttachment: {
        port_id: vif.portId,
        net_id: vif.networkId,
        mac_addr: vif.macAddress,
        port_state: port.status,
        fixed_ips: port.fixed_ips,
      },
    };
  }

  @Delete('servers/:id/os-interface/:port')
  @HttpCode(202)
  async detachInterface(@Auth() auth: AuthContext, @Param('id') id: string, @Param('port') portId: string) {
    allow('os_compute_api:os-attach-interfaces:delete', member(auth));
    const instance = await this.servers.get(auth, id);
    this.servers.checkLocked(auth, instance);
    const vif = (instance.networkInfo ?? []).find((item) => item.portId === portId);
    if (!vif) throw new NotFoundError(`Port ${portId} is not attached`);
    await this.servers.records.startAction(instance.uuid, 'detach_interface', requestIdNow(), {
      userId: auth.userId,
      projectId: auth.projectId,
    });
    await this.servers.releasePorts(auth, [vif]);
    await this.servers.records.update(instance.uuid, {
      networkInfo: (instance.networkInfo ?? []).filter((item) => item.portId !== portId),
    });
  }

  /** Admin: events from Neutron (vif plugged, ...); each answers 200, or 404 for a server that is not there. */
  @Post('os-server-external-events')
  async externalEvents(
    @Auth() auth: AuthContext,
    @Body() body: unknown,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    allow('os_compute_api:os-server-external-events:create', isAdmin(auth));
    const root = requireObject('root', body);
    onlyKeys('root', root, ['events']);
    if (!Array.isArray(root.events) || root.events.length < 1)
      throw invalid('events', root.events, 'must be a non-empty array');
    const events = root.events.map((item) => {
      const event = requireObject('events', item);
      onlyKeys('events', event, ['name', 'server_uuid', 'status', 'tag']);
      if (typeof event.name !== 'string' || !EVENT_NAMES.includes(event.name)) {
        throw invalid('name', event.name, `is not one of ${JSON.stringify(EVENT_NAMES)}`);
      }
      if (typeof event.server_uuid !== 'string' || !UUID.test(event.server_uuid)) {
        throw invalid('server_uuid', event.server_uuid, "is not a 'uuid'");
      }
      const status = event.status ?? 'completed';
      if (!['failed', 'completed', 'in-progress'].includes(status as string)) {
        throw invalid('status', status, "is not one of ['failed', 'completed', 'in-progress']");
      }
      return {
        name: event.name,
        server_uuid: event.server_uuid,
        status,
        ...(event.tag !== undefined ? { tag: event.tag } : {}),
      };
    });
    const found = await this.servers.store.dataSource.getRepository(InstanceEntity).find({
      where: { uuid: In(events.map((e) => e.server_uuid)) },
      select: { uuid: true, deletedAt: true, host: true },
    });
    const live = new Set(found.filter((i) => !i.deletedAt && i.host).map((i) => i.uuid));
    const answered = events.map((event) => ({ ...event, code: live.has(event.server_uuid) ? 200 : 404 }));
    if (!answered.some((e) => e.code === 200)) throw new NotFoundError('No instances found for any event');
    reply.status(answered.every((e) => e.code === 200) ? 200 : 207);
    return { events: answered };
  }
}
