import { randomBytes } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { BadRequestError, ConflictError } from '@novum/common';
import { IpAllocationEntity, SubnetEntity } from '@novum/db';
import { Cidr, cidrContains, formatIp, parseCidr, parseIp, Range, rangeSize } from '@novum/common';
import { NetworkTables } from './network.store';

/** Pools up to this size are searched address by address; larger ones (IPv6) are sampled at random. */
const ENUMERABLE = 1n << 16n;
/** Racing requests pick among the first free addresses at random, so they rarely collide. */
const SPREAD = 256;

export function poolRanges(subnet: SubnetEntity): Range[] {
  return subnet.allocationPools.map((pool) => ({
    first: parseIp(pool.start)!.value,
    last: parseIp(pool.end)!.value,
  }));
}

function randomBelow(n: bigint): bigint {
  const bytes = randomBytes(17).toString('hex');
  return BigInt(`0x${bytes}`) % n;
}

/**
 * IP address management. An address belongs to whoever inserts its (subnet, address) row first:
 * the primary key decides races, in SQLite and PostgreSQL alike, so two ports never share an address.
 */
@Injectable()
export class Ipam {
  /** A specific address, as a port's `fixed_ips` may ask for. */
  async allocateAddress(
    t: NetworkTables,
    subnet: SubnetEntity,
    portId: string,
    address: string,
    mayTakeGateway = false,
  ): Promise<IpAllocationEntity> {
    const ip = parseIp(address);
    if (!ip)
      throw new BadRequestError(`Invalid input for operation: '${address}' is not a valid IP address.`);
    const cidr = parseCidr(subnet.cidr) as Cidr;
    const isV4Edge =
      cidr.version === 4 && cidr.prefix < 31 && (ip.value === cidr.network || ip.value === cidr.last);
    if (!cidrContains(cidr, ip) || isV4Edge) {
      throw new BadRequestError(
        `IP address ${address} is not a valid IP for the specified subnet.`,
        'InvalidIpForSubnet',
      );
    }
    const canonical = formatIp(ip);
    if (canonical === subnet.gatewayIp && !mayTakeGateway) {
      throw new ConflictError(
        `IP address ${canonical} already allocated in subnet ${subnet.id}`,
        'IpAddressAlreadyAllocated',
      );
    }
    if (!(await this.claim(t, subnet, portId, canonical))) {
      throw new ConflictError(
        `IP address ${canonical} already allocated in subnet ${subnet.id}`,
        'IpAddressAlreadyAllocated',
      );
    }
    return { subnetId: subnet.id, ipAddress: canonical, networkId: subnet.networkId, portId };
  }

  /** Any free address of the subnet's allocation pools, or undefined when they are exhausted. */
  async allocateAny(
    t: NetworkTables,
    subnet: SubnetEntity,
    portId: string,
  ): Promise<IpAllocationEntity | undefined> {
    const ranges = poolRanges(subnet);
    const version = subnet.ipVersion as 4 | 6;
    const size = rangeSize(ranges);
    if (size === 0n) return undefined;
    if (size > ENUMERABLE) {
      for (let attempt = 0; attempt < 32; attempt++) {
        let offset = randomBelow(size);
        const range = ranges.find((r) => {
          if (offset <= r.last - r.first) return true;
          offset -= r.last - r.first + 1n;
          return false;
        })!;
        const address = formatIp({ version, value: range.first + offset });
        if (address === subnet.gatewayIp) continue;
        if (await this.claim(t, subnet, portId, address)) {
          return { subnetId: subnet.id, ipAddress: address, networkId: subnet.networkId, portId };
        }
      }
      return undefined;
    }
    for (;;) {
      const taken = new Set(
        (await t.allocations.find({ select: { ipAddress: true }, where: { subnetId: subnet.id } })).map(
          (a) => a.ipAddress,
        ),
      );
      const candidates: string[] = [];
      for (const range of ranges) {
        for (let value = range.first; value <= range.last && candidates.length < SPREAD; value++) {
          const address = formatIp({ version, value });
          if (!taken.has(address) && address !== subnet.gatewayIp) candidates.push(address);
        }
      }
      if (candidates.length === 0) return undefined;
      while (candidates.length) {
        const [address] = candidates.splice(Math.floor(Math.random() * candidates.length), 1);
        if (await this.claim(t, subnet, portId, address)) {
          return { subnetId: subnet.id, ipAddress: address, networkId: subnet.networkId, portId };
        }
      }
    }
  }

  private async claim(
    t: NetworkTables,
    subnet: SubnetEntity,
    portId: string,
    address: string,
  ): Promise<boolean> {
    await t.insertIfAbsent(IpAllocationEntity, {
      subnetId: subnet.id,
      ipAddress: address,
      networkId: subnet.networkId,
      portId,
    });
    const row = await t.allocations.findOneBy({ subnetId: subnet.id, ipAddress: address });
    return row?.portId === portId;
  }
}
