import { parseImagePatch } from './json-patch';

describe('parseImagePatch', () => {
  it('reads add, replace and remove of one attribute, decoding ~1 and ~0', () => {
    expect(
      parseImagePatch([
        { op: 'add', path: '/hw_disk_bus', value: 'scsi' },
        { op: 'replace', path: '/a~1b~0c', value: 'x' },
        { op: 'remove', path: '/name' },
      ]),
    ).toEqual([
      { op: 'add', attribute: 'hw_disk_bus', value: 'scsi' },
      { op: 'replace', attribute: 'a/b~c', value: 'x' },
      { op: 'remove', attribute: 'name' },
    ]);
  });

  it.each([
    [{ op: 'add', path: '/x', value: 1 }, /JSON array/],
    [[null], /JSON object/],
    [[{ op: 'move', path: '/x', from: '/y' }], /'op' must be one of/],
    [[{ op: 'test', path: '/x', value: 1 }], /'op' must be one of/],
    [[{ op: 'add', path: 5, value: 1 }], /'path' must be a string/],
    [[{ op: 'add', path: 'x', value: 1 }], /must start with '\/'/],
    [[{ op: 'add', path: '/', value: 1 }], /Invalid JSON pointer/],
    [[{ op: 'add', path: '/a/b', value: 1 }], /Invalid JSON pointer/],
    [[{ op: 'add', path: '/a~2', value: 1 }], /Invalid JSON pointer/],
    [[{ op: 'add', path: '/a' }], /needs a 'value'/],
    [[{ op: 'remove', path: '/a', value: 1 }], /takes no 'value'/],
  ])('refuses %j with a 400', (body, message) => {
    expect(() => parseImagePatch(body)).toThrow(
      expect.objectContaining({ status: 400, message: expect.stringMatching(message) }),
    );
  });
});
