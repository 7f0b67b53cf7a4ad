import {
  DriverError,
  InstanceExists,
  InstanceInvalidState,
  InstanceNotFound,
  NotSupportedByDriver,
  PowerState,
  versionToInt,
} from './index';

describe('versionToInt', () => {
  it.each([
    ['1.0', 1000],
    ['8.2.1', 8_002_001],
    ['1.2.3.4', 1_002_003_004],
  ])('encodes %s as Nova does', (version, encoded) => {
    expect(versionToInt(version)).toBe(encoded);
  });
});

describe('driver errors', () => {
  const uuid = '0b7a3c1e-6f1d-4a8e-9d6c-1f2e3d4c5b6a';

  it("carry Nova's messages and their class names, all as DriverErrors", () => {
    const errors = [
      new InstanceNotFound(uuid),
      new InstanceExists(uuid),
      new InstanceInvalidState(uuid, 'suspend', PowerState.SHUTDOWN, 'It is in rescue mode.'),
      new NotSupportedByDriver('rescue', 'container'),
    ];
    expect(errors.map((error) => [error.name, error.message])).toEqual([
      ['InstanceNotFound', `Instance ${uuid} could not be found.`],
      ['InstanceExists', `Instance ${uuid} already exists.`],
      [
        'InstanceInvalidState',
        `Instance ${uuid} in power_state shutdown. Cannot suspend while the instance is in this state. ` +
          'It is in rescue mode.',
      ],
      ['NotSupportedByDriver', 'The container driver does not support rescue.'],
    ]);
    for (const error of errors) expect(error).toBeInstanceOf(DriverError);
  });

  it('keep the cause of a driver failure', () => {
    const cause = new Error('qmp: connection reset');
    expect(new DriverError('Failed to pause the guest.', { cause }).cause).toBe(cause);
  });
});
