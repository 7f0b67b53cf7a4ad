import { hashSecret, verifySecret } from './password';

describe('password hashing', () => {
  it('verifies the right secret only, with a fresh salt each time', async () => {
    const hash = await hashSecret('s3cret');
    expect(hash).toMatch(/^scrypt\$16384\$8\$1\$/);
    expect(await verifySecret('s3cret', hash)).toBe(true);
    expect(await verifySecret('s3cret!', hash)).toBe(false);
    expect(await hashSecret('s3cret')).not.toBe(hash);
  });

  it('refuses a missing or malformed hash', async () => {
    expect(await verifySecret('x', null)).toBe(false);
    expect(await verifySecret('x', 'md5$abc')).toBe(false);
  });
});
