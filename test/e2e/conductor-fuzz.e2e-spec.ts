import { randomUUID } from 'node:crypto';
import { AllocationEntity, ComputeNodeEntity } from '@novum/db';
import { ComputeMethod, computeQueue, CONDUCTOR_QUEUE, ConductorMethod } from '@novum/compute';
import { ControlPlane, SMALL_FLAVOR } from './support/control-plane';
import { mutate, pool, Rng } from './support/fuzz';

/**
 * Hostile messages to the conductor and a compute agent: payloads of the contract with one random change
 * each (wrong types, missing or extra fields, unknown instances). Each is refused or handled; afterwards no
 * instance is stuck in a task, every node's counters equal its claims, and a new build still goes ACTIVE.
 * FUZZ_SEED and FUZZ_COUNT reproduce or lengthen a run.
 */
jest.setTimeout(180_000);
// The refusals are logged as errors by design; this test checks their effect, not their lines.
process.env.NOVUM_LOG_LEVEL = 'fatal';

const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 100_000);
const COUNT = Number(process.env.FUZZ_COUNT ?? 400);

describe(`control plane fuzzing (FUZZ_SEED=${SEED})`, () => {
  let plane: ControlPlane;

  beforeAll(async () => {
    plane = await ControlPlane.start();
  });

  afterAll(async () => {
    await plane?.close();
  });

  it(`survives ${COUNT} mutated messages with its invariants intact`, async () => {
    await plane.startAgent('fuzz');
    const host = plane.hostName('fuzz');
    const targets: string[] = [];
    for (let i = 0; i < 4; i++) targets.push(await plane.createServer(SMALL_FLAVOR));
    for (const uuid of targets) expect((await plane.settled(uuid)).vmState).toBe('active');
    const { bus } = plane;
    const rng = new Rng(SEED);

    const casts: [string, string, () => Record<string, unknown>][] = [
      [
        CONDUCTOR_QUEUE,
        ConductorMethod.BUILD_INSTANCES,
        () => ({ instanceUuids: [rng.pick(targets)], requestId: 'req-f' }),
      ],
      [
        computeQueue(host),
        ComputeMethod.BUILD_AND_RUN_INSTANCE,
        () => ({
          instanceUuid: rng.pick(targets),
          requestId: 'req-f',
          node: host,
          attempt: 1,
          excludedHosts: [],
        }),
      ],
      [
        computeQueue(host),
        ComputeMethod.REBOOT_INSTANCE,
        () => ({ instanceUuid: rng.pick(targets), requestId: 'req-f', rebootType: 'HARD' }),
      ],
      ...[
        ComputeMethod.STOP_INSTANCE,
        ComputeMethod.START_INSTANCE,
        ComputeMethod.PAUSE_INSTANCE,
        ComputeMethod.UNPAUSE_INSTANCE,
        ComputeMethod.SUSPEND_INSTANCE,
        ComputeMethod.RESUME_INSTANCE,
        ComputeMethod.TERMINATE_INSTANCE,
      ].map((method): [string, string, () => Record<string, unknown>] => [
        computeQueue(host),
        method,
        () => ({ instanceUuid: rng.pick([...targets, randomUUID()]), requestId: 'req-f' }),
      ]),
    ];

    await pool(COUNT, 8, async () => {
      if (rng.next() < 0.15) {
        const payload = mutate(rng, { instanceUuid: rng.pick(targets), length: 3 });
        const answer = await bus
          .call(computeQueue(host), ComputeMethod.GET_CONSOLE_OUTPUT, payload, 10_000)
          .then(
            (text) => ({ text }),
            (error: { status?: number; name: string }) => ({ error }),
          );
        if ('error' in answer) {
          expect(answer.error).toMatchObject({ name: 'RemoteError' });
          expect(`${answer.error.status} ${(answer.error as Error).message}`).toMatch(/^(400|404|409) /);
        } else {
          expect(typeof answer.text).toBe('string');
        }
        return;
      }
      const [queue, method, valid] = rng.pick(casts);
      await bus.cast(queue, method, mutate(rng, valid()));
    });

    // Let the casts drain, then check what they left behind.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    for (const uuid of targets) {
      const instance = await plane.instance(uuid);
      expect(instance.taskState).toBeNull();
      expect(['active', 'stopped', 'paused', 'suspended', 'error', 'deleted']).toContain(instance.vmState);
    }
    const node = await plane.dataSource
      .getRepository(ComputeNodeEntity)
      .findOneByOrFail({ hypervisorHostname: host });
    const claims = await plane.dataSource.getRepository(AllocationEntity).findBy({ nodeUuid: node.uuid });
    expect(node.vcpusUsed).toBe(claims.reduce((sum, claim) => sum + claim.vcpus, 0));
    expect(node.memoryMbUsed).toBe(claims.reduce((sum, claim) => sum + claim.memoryMb, 0));
    expect((await plane.settled(await plane.createServer(SMALL_FLAVOR))).vmState).toBe('active');
  });
});
