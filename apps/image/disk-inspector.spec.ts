import { diskImageProblem } from './disk-inspector';

describe('diskImageProblem', () => {
  it('accepts data whose header matches its disk_format', () => {
    expect(diskImageProblem('qcow2', { format: 'qcow2', virtualSize: 1 })).toBeUndefined();
    expect(diskImageProblem('raw', { format: 'raw', virtualSize: 1 })).toBeUndefined();
    expect(diskImageProblem('iso', { format: 'raw', virtualSize: 1 })).toBeUndefined();
    expect(diskImageProblem('vhd', { format: 'vpc', virtualSize: 1 })).toBeUndefined();
    expect(diskImageProblem('ploop', { format: 'raw', virtualSize: 1 })).toBeUndefined();
  });

  it('refuses a header that contradicts the disk_format (a qcow2 posing as raw)', () => {
    expect(diskImageProblem('raw', { format: 'qcow2', virtualSize: 1 })).toMatch(
      /does not match disk_format 'raw'/,
    );
    expect(diskImageProblem('qcow2', { format: 'raw', virtualSize: 1 })).toMatch(/does not match/);
    expect(diskImageProblem('iso', { format: 'vmdk', virtualSize: 1 })).toMatch(/does not match/);
  });

  it('refuses VMDK descriptors that point at other files', () => {
    const vmdk = { format: 'vmdk', virtualSize: 1 };
    expect(
      diskImageProblem('vmdk', { ...vmdk, vmdkCreateType: 'monolithicSparse', foreignExtents: [] }),
    ).toBeUndefined();
    expect(diskImageProblem('vmdk', { ...vmdk, vmdkCreateType: 'streamOptimized' })).toBeUndefined();
    expect(diskImageProblem('vmdk', { ...vmdk, vmdkCreateType: 'monolithicFlat' })).toMatch(/create type/);
    expect(
      diskImageProblem('vmdk', {
        ...vmdk,
        vmdkCreateType: 'monolithicSparse',
        foreignExtents: ['/etc/shadow'],
      }),
    ).toMatch(/other files as its extents/);
  });

  it('refuses backing files and external data files', () => {
    expect(
      diskImageProblem('qcow2', { format: 'qcow2', virtualSize: 1, backingFile: '/etc/passwd' }),
    ).toMatch(/backing file/);
    expect(diskImageProblem('qcow2', { format: 'qcow2', virtualSize: 1, dataFile: '/dev/sda' })).toMatch(
      /data file/,
    );
  });
});
