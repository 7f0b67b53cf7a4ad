import { Injectable } from '@nestjs/common';
import { Test, TestingModule } from '@nestjs/testing';
import { ConflictError } from '@novum/common';
import {
  BUS_TRANSPORT,
  BusClosedError,
  BusConsumer,
  BusMessage,
  BusModule,
  EventListener,
  InProcessTransport,
  MessageBus,
  RemoteError,
  RpcMethod,
} from './index';
import { waitFor } from './testing';

@Injectable()
class ConsoleStore {
  url(id: string) {
    return `https://console.example/${id}`;
  }
}

const heard: Array<[string, unknown]> = [];

@BusConsumer('compute.host1')
@Injectable()
class ComputeManager {
  constructor(private readonly consoles: ConsoleStore) {}

  @RpcMethod('get_console')
  getConsole(payload: { id: string }, message: BusMessage) {
    return { url: this.consoles.url(payload.id), method: message.method };
  }

  @RpcMethod('reboot')
  async reboot() {
    throw new ConflictError('Cannot reboot while the instance is being deleted');
  }

  @EventListener('notifications', 'instance.create.end')
  @EventListener('notifications', 'instance.delete.end')
  async onInstanceEvent(payload: unknown, message: BusMessage) {
    heard.push([`compute:${message.method}`, payload]);
  }
}

@Injectable()
class Scheduler {
  @EventListener('notifications', 'instance.create.end')
  onCreate(payload: unknown) {
    heard.push(['scheduler:instance.create.end', payload]);
  }
}

@Injectable()
class Orphan {
  @RpcMethod('lost')
  lost() {}
}

const apps: TestingModule[] = [];
async function boot(...providers: Array<new (...args: never[]) => unknown>): Promise<TestingModule> {
  const app = await Test.createTestingModule({ imports: [BusModule.forRoot()], providers }).compile();
  apps.push(app);
  await app.init();
  return app;
}

afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
  heard.length = 0;
});

describe('MessageBus', () => {
  it('uses the in-process transport when no AMQP URL is given', async () => {
    const app = await boot();
    expect(app.get(BUS_TRANSPORT)).toBeInstanceOf(InProcessTransport);
  });

  it("serves a @BusConsumer's @RpcMethod methods, dispatching by method name", async () => {
    const bus = (await boot(ConsoleStore, ComputeManager)).get(MessageBus);

    await expect(bus.call('compute.host1', 'get_console', { id: 'abc' })).resolves.toEqual({
      url: 'https://console.example/abc',
      method: 'get_console',
    });
    await expect(bus.call('compute.host1', 'reboot', {})).rejects.toMatchObject({
      remoteName: 'ConflictError',
      status: 409,
      message: 'Cannot reboot while the instance is being deleted',
    });
  });

  it('answers a method no consumer of the queue has with a RemoteError', async () => {
    const bus = (await boot(ConsoleStore, ComputeManager)).get(MessageBus);

    const error = await bus.call('compute.host1', 'resize', {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RemoteError);
    expect(error).toMatchObject({
      remoteName: 'NoSuchMethodError',
      message: 'Queue compute.host1 has no method resize',
    });
  });

  it('hands a published event to every @EventListener of it, on any provider', async () => {
    const bus = (await boot(ConsoleStore, ComputeManager, Scheduler)).get(MessageBus);

    await bus.publish('notifications', 'instance.create.end', { id: 'a' });
    await bus.publish('notifications', 'instance.delete.end', { id: 'a' });
    await bus.publish('notifications', 'instance.update', { id: 'a' });
    await waitFor('3 deliveries', () => heard.length === 3);

    expect(heard).toEqual(
      expect.arrayContaining([
        ['compute:instance.create.end', { id: 'a' }],
        ['scheduler:instance.create.end', { id: 'a' }],
        ['compute:instance.delete.end', { id: 'a' }],
      ]),
    );
  });

  it('reaches the handlers of another Nest app in the same process', async () => {
    await boot(ConsoleStore, ComputeManager);
    const api = await boot();

    await expect(
      api.get(MessageBus).call('compute.host1', 'get_console', { id: 'x' }),
    ).resolves.toMatchObject({
      url: 'https://console.example/x',
    });
  });

  it('serves a queue named at run time with handlers by method name', async () => {
    const bus = (await boot()).get(MessageBus);
    await bus.serve('compute.host7', {
      get_console: (payload, message) => ({ host: 'host7', payload, method: message.method }),
    });

    await expect(bus.call('compute.host7', 'get_console', { id: 'a' })).resolves.toEqual({
      host: 'host7',
      payload: { id: 'a' },
      method: 'get_console',
    });
    await expect(bus.call('compute.host7', 'reboot', {})).rejects.toMatchObject({
      remoteName: 'NoSuchMethodError',
      message: 'Queue compute.host7 has no method reboot',
    });
  });

  it('refuses to start with an @RpcMethod outside a @BusConsumer', async () => {
    // Not closed afterwards: close() would rethrow the failed init, and an in-process bus holds nothing.
    const app = await Test.createTestingModule({
      imports: [BusModule.forRoot()],
      providers: [Orphan],
    }).compile();
    await expect(app.init()).rejects.toThrow(
      'Orphan.lost is an @RpcMethod, but Orphan has no @BusConsumer(queue)',
    );
  });

  it('closes the transport when the app shuts down', async () => {
    const app = await boot();
    const bus = app.get(MessageBus);
    apps.splice(apps.indexOf(app), 1);
    await app.close();

    await expect(bus.cast('compute.host1', 'get_console', {})).rejects.toBeInstanceOf(BusClosedError);
  });
});
