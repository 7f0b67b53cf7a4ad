import { MessageBus } from '@novum/bus';
import {
  BuildAndRunInstanceRequest,
  BuildInstancesRequest,
  ComputeMethod,
  computeQueue,
  ConductorMethod,
  CONDUCTOR_QUEUE,
  ConsoleOutputRequest,
  InstanceRequest,
  RebootInstanceRequest,
} from './contract';

type InstanceMethod = Exclude<
  (typeof ComputeMethod)[keyof typeof ComputeMethod],
  'build_and_run_instance' | 'reboot_instance' | 'get_console_output'
>;

/** Typed sends of the contract in contract.ts, for the compute API, the conductor and the agent. */
export class ComputeRpcClient {
  constructor(private readonly bus: MessageBus) {}

  buildInstances(request: BuildInstancesRequest): Promise<void> {
    return this.bus.cast(CONDUCTOR_QUEUE, ConductorMethod.BUILD_INSTANCES, request);
  }

  buildAndRunInstance(host: string, request: BuildAndRunInstanceRequest): Promise<void> {
    return this.bus.cast(computeQueue(host), ComputeMethod.BUILD_AND_RUN_INSTANCE, request);
  }

  rebootInstance(host: string, request: RebootInstanceRequest): Promise<void> {
    return this.bus.cast(computeQueue(host), ComputeMethod.REBOOT_INSTANCE, request);
  }

  /** terminate, stop, start, pause, unpause, suspend, resume. */
  instanceAction(host: string, method: InstanceMethod, request: InstanceRequest): Promise<void> {
    return this.bus.cast(computeQueue(host), method, request);
  }

  getConsoleOutput(host: string, request: ConsoleOutputRequest, timeoutMs = 30_000): Promise<string> {
    return this.bus.call<string>(computeQueue(host), ComputeMethod.GET_CONSOLE_OUTPUT, request, timeoutMs);
  }
}
