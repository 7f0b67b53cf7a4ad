import { parseRange } from './image-data.service';

describe('parseRange', () => {
  it('reads the forms of a single byte range', () => {
    expect(parseRange('bytes=0-9', 100)).toEqual({ start: 0, end: 9 });
    expect(parseRange('bytes=90-', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=-10', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=95-200', 100)).toEqual({ start: 95, end: 99 });
  });

  it('refuses what cannot be satisfied', () => {
    for (const header of ['bytes=100-', 'bytes=5-1', 'bytes=-0'])
      expect(parseRange(header, 100)).toBeUndefined();
  });

  it('ignores what it does not serve (the whole image is sent)', () => {
    for (const header of ['bytes=-', 'items=0-1', 'bytes=0-1,3-4', 'nonsense']) {
      expect(parseRange(header, 100)).toBe('ignore');
    }
  });
});
