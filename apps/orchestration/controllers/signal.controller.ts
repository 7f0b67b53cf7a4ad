import {
  Body,
  Controller,
  Headers,
  HttpCode,
  Inject,
  Injectable,
  Param,
  Post,
  UseFilters,
} from '@nestjs/common';
import { authorize, canActOnProject, Public, TokenValidator } from '@novum/auth';
import { BadRequestError, NOVUM_CONFIG, NotFoundError, NovumConfig, UnauthorizedError } from '@novum/common';
import { HeatResourceEntity } from '@novum/db';
import { OrchestrationErrorFilter } from '../hot-error.filter';
import {
  acceptSignal,
  bindWaitConditions,
  handleTokenMatches,
  WAIT_CONDITION_HANDLE,
  WaitSignal,
} from '../resources/wait-condition';
import { StackStore } from '../stack.store';

/** The signals of wait condition handles, kept in the handle's resource metadata as Heat keeps them. */
@Injectable()
export class WaitConditionSignals {
  /** One signal at a time per resource: each adds to what the previous ones wrote. */
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(
    private readonly store: StackStore,
    @Inject(NOVUM_CONFIG) config: NovumConfig,
  ) {
    bindWaitConditions({
      serverUrl: config.heatWaitconditionServerUrl,
      signalsOf: async (stackId, handleRef) => {
        const row = await this.store.resources.findOneBy({ stackId, physicalId: handleRef });
        return row ? (row.metadata as Record<string, WaitSignal>) : undefined;
      },
    });
  }

  /** The resource named by `/stacks/{name}/{id}/resources/{resource}` in the project, or 404. */
  async find(projectId: string, name: string, id: string, resource: string): Promise<HeatResourceEntity> {
    const stack = await this.store.stacks.findOneBy({ id, projectId });
    if (!stack || stack.name !== name || stack.deletedAt) {
      throw new NotFoundError(`The Stack (${name}) could not be found.`, 'EntityNotFound');
    }
    const [row] = await this.store.resources.find({
      where: { stackId: id, name: resource },
      order: { createdAt: 'DESC' },
      take: 1,
    });
    if (!row) {
      throw new NotFoundError(
        `The Resource (${resource}) could not be found in Stack ${name}.`,
        'EntityNotFound',
      );
    }
    return row;
  }

  async signal(row: HeatResourceEntity, details: unknown): Promise<void> {
    if (row.type !== WAIT_CONDITION_HANDLE) {
      throw new BadRequestError(`Resource ${row.name} of type ${row.type} does not accept signals.`);
    }
    const previous = this.queues.get(row.id) ?? Promise.resolve();
    const next = previous.then(async () => {
      const current = await this.store.resources.findOneByOrFail({ id: row.id });
      const metadata = acceptSignal((current.metadata ?? {}) as Record<string, WaitSignal>, details);
      await this.store.resources.update({ id: row.id }, { metadata });
    });
    const settled = next.catch(() => undefined);
    this.queues.set(row.id, settled);
    void settled.then(() => {
      if (this.queues.get(row.id) === settled) this.queues.delete(row.id);
    });
    await next;
  }
}

/**
 * `POST /v1/{tenant}/stacks/{name}/{id}/resources/{resource}/signal` (Heat's resource signal). A wait
 * condition handle's own token signals that handle (a guest holds nothing else); a project member's
 * Keystone token signals any of the project's handles.
 */
@Controller('v1/:tenant/stacks')
@UseFilters(OrchestrationErrorFilter)
export class SignalController {
  constructor(
    private readonly signals: WaitConditionSignals,
    private readonly validator: TokenValidator,
  ) {}

  @Public()
  @Post(':name/:id/resources/:resource/signal')
  @HttpCode(200)
  async signal(
    @Param('tenant') tenant: string,
    @Param('name') name: string,
    @Param('id') id: string,
    @Param('resource') resource: string,
    @Headers('x-auth-token') token: string | undefined,
    @Body() body: unknown,
  ): Promise<void> {
    if (!token) throw new UnauthorizedError();
    // Whether a stack exists is only told to a caller with a valid token.
    const row = await this.signals.find(tenant, name, id, resource).catch(async (error) => {
      await this.validator.validate(token);
      throw error;
    });
    if (!handleTokenMatches(row, token)) {
      const auth = await this.validator.validate(token);
      authorize('resource:signal', canActOnProject(auth, tenant));
    }
    await this.signals.signal(row, body);
  }
}
