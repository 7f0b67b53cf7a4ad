import { BadRequestError, NovumValidationPipe } from '@novum/common';
import { AuthRequest } from './auth-request.dto';

describe('AuthRequest validation', () => {
  const pipe = new NovumValidationPipe();
  const body = (scope: unknown) => ({
    auth: {
      identity: {
        methods: ['password'],
        password: { user: { name: 'demo', domain: { id: 'default' }, password: 'pw' } },
      },
      scope,
    },
  });
  const validate = (value: unknown) => pipe.transform(value, { type: 'body', metatype: AuthRequest });

  it("takes Keystone's explicit 'unscoped' scope (keystoneauth's unscoped=True, Horizon's login)", async () => {
    const request = (await validate(body('unscoped'))) as AuthRequest;
    expect(request.auth.scope).toBe('unscoped');
  });

  it('takes a project scope object and refuses any other string', async () => {
    const request = (await validate(body({ project: { id: 'p1' } }))) as AuthRequest;
    expect(request.auth.scope).toEqual({ project: { id: 'p1' } });
    await expect(validate(body('project'))).rejects.toThrow(BadRequestError);
    await expect(validate(body('project'))).rejects.toThrow(/'auth\/scope'/);
  });
});
