/**
 * A template error as Heat reports it (`StackValidationFailed`): an optional error kind, the template path
 * of the offending value (`resources.server.properties.image`, list items as `[0]`) and the message.
 */
export class HotError extends Error {
  override name = 'HotError';
  constructor(
    readonly detail: string,
    readonly path: (string | number)[] = [],
    readonly kind = '',
  ) {
    super(formatHotError(kind, path, detail));
  }

  /** The same error seen from further up the template: `prefix` goes in front of the path. */
  under(prefix: (string | number)[], kind?: string): HotError {
    return new HotError(this.detail, [...prefix, ...this.path], kind ?? this.kind);
  }
}

export function formatPath(path: (string | number)[]): string {
  let out = '';
  for (const item of path) {
    if (typeof item === 'number' || /^\d+$/.test(item)) out += `[${item}]`;
    else out = out ? `${out}.${item}` : item;
  }
  return out;
}

function formatHotError(kind: string, path: (string | number)[], detail: string): string {
  const where = formatPath(path);
  return `${kind ? `${kind}: ` : ''}${where ? `${where}: ` : ''}${detail}`;
}
