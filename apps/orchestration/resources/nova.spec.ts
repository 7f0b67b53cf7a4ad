import { CloudSession } from '../cloud';
import { fakeActionContext } from '../testing';
import { resize } from './nova';

/** A Nova that knows two flavours and answers each GET of the server with the next state of a script. */
class FakeNova {
  posts: unknown[] = [];
  constructor(private readonly states: Record<string, unknown>[]) {}

  async request<T>(_type: string, method: string, path: string, body?: unknown): Promise<T> {
    if (path.startsWith('/flavors'))
      return {
        flavors: [
          { id: '11', name: 'c1.tiny' },
          { id: '12', name: 'c1.small' },
        ],
      } as T;
    if (method === 'POST') {
      this.posts.push(body);
      return undefined as T;
    }
    // The last state stays once the script has run out.
    const state = this.states.length > 1 ? this.states.shift()! : this.states[0];
    return { server: { id: 's1', ...state } } as T;
  }
}

const server = (status: string, task: string | null, flavor: string) => ({
  status,
  'OS-EXT-STS:task_state': task,
  flavor: { id: flavor },
});

describe("OS::Nova::Server's resize (flavor_update_policy RESIZE)", () => {
  it('confirms once at VERIFY_RESIZE and ends when the server is ACTIVE with no task', async () => {
    const nova = new FakeNova([
      server('RESIZE', 'resize_prep', '11'),
      server('RESIZE', 'resize_finish', '11'),
      server('VERIFY_RESIZE', null, '12'),
      server('VERIFY_RESIZE', 'resize_confirming', '12'),
      server('ACTIVE', null, '12'),
    ]);
    await resize(fakeActionContext(nova), nova as unknown as CloudSession, 's1', 'c1.small');
    expect(nova.posts).toEqual([{ resize: { flavorRef: '12' } }, { confirmResize: null }]);
  });

  it('fails, instead of waiting for ever, when the resize ended without resizing', async () => {
    // What Nova shows when its compute host failed the resize and left the server as it was: no task, the
    // old flavour (the fault is in the server's actions).
    const nova = new FakeNova([server('RESIZE', 'resize_migrating', '11'), server('ACTIVE', null, '11')]);
    await expect(
      resize(fakeActionContext(nova), nova as unknown as CloudSession, 's1', 'c1.small'),
    ).rejects.toThrow("Resizing to 'c1.small' failed, status 'ACTIVE'");
    expect(nova.posts).toEqual([{ resize: { flavorRef: '12' } }]);
  });

  it('ends without a confirm when Nova confirmed the resize itself (the new flavour, no task)', async () => {
    const nova = new FakeNova([server('ACTIVE', null, '12')]);
    await resize(fakeActionContext(nova), nova as unknown as CloudSession, 's1', 'c1.small');
    expect(nova.posts).toEqual([{ resize: { flavorRef: '12' } }]);
  });

  it('ends at SHUTOFF for a server that was stopped when it was resized', async () => {
    const nova = new FakeNova([
      server('RESIZE', 'resize_prep', '11'),
      server('VERIFY_RESIZE', null, '12'),
      server('SHUTOFF', null, '12'),
    ]);
    await resize(fakeActionContext(nova), nova as unknown as CloudSession, 's1', 'c1.small');
    expect(nova.posts).toEqual([{ resize: { flavorRef: '12' } }, { confirmResize: null }]);
  });

  it('fails on ERROR', async () => {
    const nova = new FakeNova([server('ERROR', null, '11')]);
    await expect(
      resize(fakeActionContext(nova), nova as unknown as CloudSession, 's1', 'c1.small'),
    ).rejects.toThrow("Resizing to 'c1.small' failed, status 'ERROR'");
  });
});
