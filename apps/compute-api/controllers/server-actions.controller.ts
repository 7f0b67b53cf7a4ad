import { Body, Controller, HttpCode, Param, Post, Res } from '@nestjs/common';
import { Auth, AuthContext, hasRole, isAdmin } from '@novum/auth';
import { BadRequestError, ConflictError, NotFoundError } from '@novum/common';
import { InstanceEntity } from '@novum/db';
import { TaskState, VmState } from '@novum/virt';
import type { FastifyReply } from 'fastify';
import { toNovaInt } from './dto';
import { ApiVersion, Microversion } from '../microversion';
import { allow } from '../policy';
import { invalid, isObject, onlyKeys, requireObject } from '../server-schemas';
import { ServerService, TaskTransition } from '../server.service';
import { currentRequestId } from './servers.controller';
import { ServerLifecycleActions } from '../server-lifecycle';

type Transition = TaskTransition;

type Handler = (ctx: {
  auth: AuthContext;
  instance: InstanceEntity;
  body: unknown;
  v: ApiVersion;
  reply: FastifyReply;
}) => Promise<unknown>;

/**
 * `POST /servers/{id}/action`: one controller dispatching on the action's name, as Nova's action routes
 * do; each action checks policy, the lock, the instance's state (409 as Nova), sets the task state on
 * condition and casts to the host's agent. Unknown actions are 400.
 */
@Controller('v2.1/servers')
export class ServerActionsController {
  private readonly handlers: Record<string, Handler>;

  constructor(
    private readonly servers: ServerService,
    private readonly more: ServerLifecycleActions,
  ) {
    this.handlers = {
      reboot: (c) => this.reboot(c.auth, c.instance, c.body),
      'os-stop': (c) =>
        this.cast(c.auth, c.instance, 'os_compute_api:os-server-actions:stop', 'stop_instance', {
          action: 'stop',
          vmStates: [VmState.ACTIVE, VmState.ERROR],
          task: TaskState.POWERING_OFF,
        }),
      'os-start': (c) =>
        this.cast(c.auth, c.instance, 'os_compute_api:os-server-actions:start', 'start_instance', {
          action: 'start',
          vmStates: [VmState.STOPPED],
          task: TaskState.POWERING_ON,
        }),
      pause: (c) =>
        this.cast(c.auth, c.instance, 'os_compute_api:os-pause-server:pause', 'pause_instance', {
          action: 'pause',
          vmStates: [VmState.ACTIVE],
          task: TaskState.PAUSING,
        }),
      unpause: (c) =>
        this.cast(c.auth, c.instance, 'os_compute_api:os-pause-server:unpause', 'unpause_instance', {
          action: 'unpause',
          vmStates: [VmState.PAUSED],
          task: TaskState.UNPAUSING,
        }),
      suspend: (c) =>
        this.cast(c.auth, c.instance, 'os_compute_api:os-suspend-server:suspend', 'suspend_instance', {
          action: 'suspend',
          vmStates: [VmState.ACTIVE],
          task: TaskState.SUSPENDING,
        }),
      resume: (c) =>
        this.cast(c.auth, c.instance, 'os_compute_api:os-suspend-server:resume', 'resume_instance', {
          action: 'resume',
          vmStates: [VmState.SUSPENDED],
          task: TaskState.RESUMING,
        }),
      lock: (c) => this.lock(c.auth, c.instance, c.body, c.v),
      unlock: (c) => this.unlock(c.auth, c.instance),
      'os-getConsoleOutput': (c) => {
        c.reply.status(200);
        return this.consoleOutput(c.auth, c.instance, c.body);
      },
      'os-resetState': (c) => this.resetState(c.auth, c.instance, c.body),
      rebuild: (c) => this.more.rebuild(c.auth, c.instance, c.body, c.v),
      resize: (c) => this.more.resize(c.auth, c.instance, c.body),
      confirmResize: (c) => {
        c.reply.status(204);
        return this.more.confirmOrRevert(c.auth, c.instance, c.body, true);
      },
      revertResize: (c) => this.more.confirmOrRevert(c.auth, c.instance, c.body, false),
      migrate: (c) => this.more.migrate(c.auth, c.instance, c.body, c.v),
      'os-migrateLive': (c) => this.more.migrateLive(c.auth, c.instance, c.body, c.v),
      evacuate: (c) => {
        c.reply.status(200);
        return this.more.evacuate(c.auth, c.instance, c.body, c.v);
      },
      createImage: (c) => this.more.createImage(c.auth, c.instance, c.body, c.v, c.reply),
      shelve: (c) => this.more.shelve(c.auth, c.instance, c.body),
      shelveOffload: (c) => this.more.shelveOffload(c.auth, c.instance, c.body),
      unshelve: (c) => this.more.unshelve(c.auth, c.instance, c.body, c.v),
      rescue: (c) => {
        c.reply.status(200);
        return this.more.rescue(c.auth, c.instance, c.body, c.v);
      },
      unrescue: (c) => this.more.unrescue(c.auth, c.instance, c.body),
      forceDelete: (c) => this.more.forceDelete(c.auth, c.instance, c.body),
      restore: (c) => this.more.restore(c.auth, c.instance, c.body),
      trigger_crash_dump: (c) => this.more.crashDump(c.auth, c.instance, c.body, c.v),
      changePassword: (c) => this.more.changePassword(c.auth, c.instance, c.body),
      addSecurityGroup: (c) => this.more.securityGroup(c.auth, c.instance, c.body, true),
      removeSecurityGroup: (c) => this.more.securityGroup(c.auth, c.instance, c.body, false),
      'os-getSerialConsole': (c) => {
        // Replaced by POST /servers/{id}/remote-consoles at 2.6.
        if (c.v.atLeast('2.6')) {
          throw new NotFoundError(`API version ${c.v.toString()} is not supported on this method.`);
        }
        c.reply.status(200);
        return this.more.serialConsole(c.auth, c.instance, c.body);
      },
    };
  }

  @Post(':id/action')
  @HttpCode(202)
  async action(
    @Auth() auth: AuthContext,
    @Param('id') id: string,
    @Body() body: unknown,
    @Microversion() v: ApiVersion,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    if (!isObject(body) || Object.keys(body).length !== 1) {
      throw new BadRequestError('Malformed request body: an action body names exactly one action.');
    }
    const [name] = Object.keys(body);
    const handler = Object.hasOwn(this.handlers, name) ? this.handlers[name] : undefined;
    if (!handler) throw new BadRequestError(`There is no such action: ${name}`);
    const instance = await this.servers.get(auth, id);
    return handler({ auth, instance, body: body[name], v, reply });
  }

  /** Sets the action's task state if the instance is (still) in an allowed state, records it, and casts. */
  private async cast(
    auth: AuthContext,
    instance: InstanceEntity,
    rule: string,
    method: Parameters<ServerService['rpc']['instanceAction']>[1],
    transition: Transition,
  ): Promise<void> {
    allow(rule, hasRole(auth, 'member'), isAdmin(auth));
    this.servers.checkLocked(auth, instance);
    await this.servers.beginTask(auth, instance, transition);
    await this.servers.rpc.instanceAction(instance.host!, method, {
      instanceUuid: instance.uuid,
      requestId: currentRequestId(),
    });
  }

  private async reboot(auth: AuthContext, instance: InstanceEntity, body: unknown): Promise<void> {
    allow('os_compute_api:servers:reboot', hasRole(auth, 'member'), isAdmin(auth));
    const args = requireObject('reboot', body);
    onlyKeys('reboot', args, ['type']);
    const type = typeof args.type === 'string' ? args.type.toUpperCase() : args.type;
    if (type !== 'SOFT' && type !== 'HARD') {
      throw invalid(
        'type',
        args.type,
        `${JSON.stringify(args.type)} is not one of ['HARD', 'Hard', 'hard', 'SOFT', 'Soft', 'soft']`,
      );
    }
    this.servers.checkLocked(auth, instance);
    const hard = type === 'HARD';
    await this.servers.beginTask(auth, instance, {
      action: 'reboot',
      vmStates: hard
        ? [VmState.ACTIVE, VmState.STOPPED, VmState.PAUSED, VmState.SUSPENDED, VmState.ERROR]
        : [VmState.ACTIVE],
      taskStates: hard
        ? [
            null,
            TaskState.REBOOTING,
            TaskState.REBOOT_PENDING,
            TaskState.REBOOT_STARTED,
            TaskState.REBOOTING_HARD,
            TaskState.REBOOT_PENDING_HARD,
          ]
        : [null],
      task: hard ? TaskState.REBOOTING_HARD : TaskState.REBOOTING,
    });
    await this.servers.rpc.rebootInstance(instance.host!, {
      instanceUuid: instance.uuid,
      requestId: currentRequestId(),
      rebootType: type,
    });
  }

  /** Nova's lock: the owner or an admin; 2.73 adds a reason. */
  private async lock(
    auth: AuthContext,
    instance: InstanceEntity,
    body: unknown,
    v: ApiVersion,
  ): Promise<void> {
    allow('os_compute_api:os-lock-server:lock', hasRole(auth, 'member'), isAdmin(auth));
    let reason: string | null = null;
    if (body !== null && body !== undefined) {
      const args = requireObject('lock', body);
      onlyKeys('lock', args, v.atLeast('2.73') ? ['locked_reason'] : []);
      if (args.locked_reason !== undefined) {
        if (typeof args.locked_reason !== 'string' || args.locked_reason.length > 255) {
          throw invalid('locked_reason', args.locked_reason, 'must be a string of at most 255 characters');
        }
        reason = args.locked_reason;
      }
    }
    await this.servers.records.startAction(instance.uuid, 'lock', currentRequestId(), {
      userId: auth.userId,
      projectId: auth.projectId,
    });
    await this.servers.records.update(instance.uuid, { locked: true, lockedReason: reason });
  }

  private async unlock(auth: AuthContext, instance: InstanceEntity): Promise<void> {
    allow('os_compute_api:os-lock-server:unlock', hasRole(auth, 'member'), isAdmin(auth));
    await this.servers.records.startAction(instance.uuid, 'unlock', currentRequestId(), {
      userId: auth.userId,
      projectId: auth.projectId,
    });
    await this.servers.records.update(instance.uuid, { locked: false, lockedReason: null });
  }

  private async consoleOutput(
    auth: AuthContext,
    instance: InstanceEntity,
    body: unknown,
  ): Promise<{ output: string }> {
    allow('os_compute_api:os-console-output', hasRole(auth, 'member'), isAdmin(auth));
    let length: number | undefined;
    if (body !== null && body !== undefined) {
      const args = requireObject('os-getConsoleOutput', body);
      onlyKeys('os-getConsoleOutput', args, ['length']);
      if (args.length !== undefined && args.length !== null) {
        const parsed = toNovaInt(args.length);
        if (parsed === undefined || parsed < -1) {
          throw invalid(
            'length',
            args.length,
            `${JSON.stringify(args.length)} is not of type 'integer', 'string'`,
          );
        }
        length = parsed === -1 ? undefined : parsed;
      }
    }
    if (!instance.host || instance.vmState === VmState.BUILDING) {
      throw new ConflictError(`Instance ${instance.uuid} is not ready yet.`);
    }
    const output = await this.servers.rpc.getConsoleOutput(instance.host, {
      instanceUuid: instance.uuid,
      length,
    });
    return { output };
  }

  /** Admin: force the vm_state to active or error and clear the task (Nova's os-resetState). */
  private async resetState(auth: AuthContext, instance: InstanceEntity, body: unknown): Promise<void> {
    allow('os_compute_api:os-admin-actions:reset_state', isAdmin(auth));
    const args = requireObject('os-resetState', body);
    onlyKeys('os-resetState', args, ['state']);
    if (args.state !== 'active' && args.state !== 'error') {
      throw invalid('state', args.state, `${JSON.stringify(args.state)} is not one of ['active', 'error']`);
    }
    await this.servers.records.startAction(instance.uuid, 'reset_state', currentRequestId(), {
      userId: auth.userId,
      projectId: auth.projectId,
    });
    await this.servers.records.update(instance.uuid, {
      vmState: args.state === 'active' ? VmState.ACTIVE : VmState.ERROR,
      taskState: null,
    });
  }
}
