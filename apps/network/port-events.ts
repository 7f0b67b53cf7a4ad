import { Injectable } from '@nestjs/common';
import { BusConsumer, MessageBus, RpcMethod } from '@novum/bus';
import { BadRequestError, rootLogger } from '@novum/common';
import { nowIso } from '@novum/db';
import {
  DeviceStatusRequest,
  FilterEvent,
  NETWORK_PLUGIN_QUEUE,
  NOTIFICATIONS_TOPIC,
  PluginMethod,
} from '@novum/virt';
import { In } from 'typeorm';
import { NetworkStore } from './network.store';

/**
 * Neutron's notifications of the changes that decide how a host filters its guests' ports
 * (`port.update.end` with `{"port": {...}}`, `security_group_rule.delete.end` with the rule's id, ...),
 * published after the change is committed; compute agents re-filter on them. Fire and forget.
 */
@Injectable()
export class NetworkNotifier {
  private readonly log = rootLogger().child({ service: 'network', component: 'notifier' });

  constructor(private readonly bus: MessageBus) {}

  emit(event: FilterEvent, payload: Record<string, unknown>): void {
    this.bus
      .publish(NOTIFICATIONS_TOPIC, event, payload)
      .catch((error) => this.log.warn({ err: error, event }, 'could not publish a notification'));
  }
}

/**
 * Neutron's plugin RPC for L2 agents: a compute agent reports a port's device up once it plugged it, and
 * down once it unplugged it; the port is ACTIVE or DOWN accordingly. A device reported up by a host the
 * port is not bound to changes nothing (the port moved meanwhile).
 */
@Injectable()
@BusConsumer(NETWORK_PLUGIN_QUEUE)
export class PortStatusService {
  constructor(private readonly store: NetworkStore) {}

  @RpcMethod(PluginMethod.DEVICE_UP)
  async deviceUp(payload: unknown): Promise<void> {
    await this.setStatus(checkRequest(payload), 'ACTIVE');
  }

  @RpcMethod(PluginMethod.DEVICE_DOWN)
  async deviceDown(payload: unknown): Promise<void> {
    await this.setStatus(checkRequest(payload), 'DOWN');
  }

  private async setStatus(request: DeviceStatusRequest, status: 'ACTIVE' | 'DOWN'): Promise<void> {
    if (!request.portIds.length) return;
    const ports = await this.store.ports.findBy({ id: In(request.portIds) });
    for (const port of ports) {
      const here = port.bindingHostId === request.host || (status === 'DOWN' && !port.bindingHostId);
      if (!here || port.status === status) continue;
      await this.store.ports.update(
        { id: port.id },
        { status, revisionNumber: port.revisionNumber + 1, updatedAt: nowIso() },
      );
    }
  }
}

function checkRequest(payload: unknown): DeviceStatusRequest {
  const request = payload as Partial<DeviceStatusRequest> | undefined;
  if (
    !request ||
    typeof request.host !== 'string' ||
    !Array.isArray(request.portIds) ||
    !request.portIds.every((id) => typeof id === 'string')
  ) {
    throw new BadRequestError('A device status report needs portIds and host.');
  }
  return { portIds: request.portIds, host: request.host };
}
