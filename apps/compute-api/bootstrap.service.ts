import { Injectable } from '@nestjs/common';
import { FlavorEntity, FlavorExtraSpecEntity, inTransaction, nowIso } from '@novum/db';
import { ComputeStore } from './compute.store';

interface FlavorSeed {
  id: string;
  name: string;
  ram: number;
  vcpus: number;
  disk: number;
  driver: 'kvm' | 'container';
}

/**
 * The flavors a new cloud starts with: `m1.*` for KVM guests (ids 1-4 as in devstack, plus `m1.nano` 42
 * for the smallest test guests) and `c1.*` for containers.
 */
export const BOOTSTRAP_FLAVORS: FlavorSeed[] = [
  { id: '1', name: 'm1.tiny', ram: 512, vcpus: 1, disk: 1, driver: 'kvm' },
  { id: '2', name: 'm1.small', ram: 2048, vcpus: 1, disk: 20, driver: 'kvm' },
  { id: '3', name: 'm1.medium', ram: 4096, vcpus: 2, disk: 40, driver: 'kvm' },
  { id: '4', name: 'm1.large', ram: 8192, vcpus: 4, disk: 80, driver: 'kvm' },
  { id: '42', name: 'm1.nano', ram: 128, vcpus: 1, disk: 1, driver: 'kvm' },
  { id: '11', name: 'c1.tiny', ram: 256, vcpus: 1, disk: 1, driver: 'container' },
  { id: '12', name: 'c1.small', ram: 1024, vcpus: 1, disk: 10, driver: 'container' },
  { id: '13', name: 'c1.medium', ram: 2048, vcpus: 2, disk: 20, driver: 'container' },
];

/** First-start data of the compute API; it adds what is missing and never changes what an operator set. */
@Injectable()
export class ComputeBootstrap {
  constructor(private readonly store: ComputeStore) {}

  async run(): Promise<void> {
    for (const seed of BOOTSTRAP_FLAVORS) {
      if (await this.store.flavors.existsBy({ id: seed.id })) continue;
      if (await this.store.flavors.existsBy({ name: seed.name })) continue;
      await inTransaction(this.store.dataSource, async (tx) => {
        await tx
          .createQueryBuilder()
          .insert()
          .into(FlavorEntity)
          .values({
            id: seed.id,
            name: seed.name,
            memoryMb: seed.ram,
            vcpus: seed.vcpus,
            rootGb: seed.disk,
            ephemeralGb: 0,
            swap: 0,
            rxtxFactor: 1,
            isPublic: true,
            disabled: false,
            description: null,
            createdAt: nowIso(),
            updatedAt: null,
          })
          .orIgnore()
          .execute();
        await tx
          .createQueryBuilder()
          .insert()
          .into(FlavorExtraSpecEntity)
          .values({ flavorId: seed.id, key: 'novum:driver', value: seed.driver })
          .orIgnore()
          .execute();
      });
    }
  }
}
