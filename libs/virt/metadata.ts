/**
 * The metadata service's answers (nova/api/metadata/base.py `lookup`): the OpenStack tree under
 * `/openstack` and the EC2 tree under `/<version>/` (or `/ec2/<version>/`), built from the very files of
 * the config drive (config-drive.ts), so that a guest reads the same data either way. Pure: no I/O.
 */
import type { InstanceSpec, NetworkInfo } from './driver';
import { ConfigDriveExtra, configDriveFiles, OPENSTACK_VERSIONS } from './config-drive';

/** The EC2 metadata versions Nova serves, oldest first; `latest` is the newest. */
export const EC2_VERSIONS = [
  '1.0',
  '2007-01-19',
  '2007-03-01',
  '2007-08-29',
  '2007-10-10',
  '2007-12-15',
  '2008-02-01',
  '2008-09-01',
  '2009-04-04',
];

export interface MetadataAnswer {
  status: 200 | 404;
  contentType: 'text/plain' | 'application/json';
  body: Buffer;
}

type Tree = { [key: string]: Tree | string | number | null | Buffer };

const text = (body: string | Buffer, contentType: MetadataAnswer['contentType'] = 'text/plain') => ({
  status: 200 as const,
  contentType,
  body: typeof body === 'string' ? Buffer.from(body) : body,
});

const notFound = (): MetadataAnswer => ({
  status: 404,
  contentType: 'text/plain',
  body: Buffer.from('404 Not Found\n\nThe resource could not be found.\n'),
});

/** The guest's metadata, answering paths as Nova's metadata API does. */
export class InstanceMetadata {
  private readonly files: Map<string, Buffer>;

  constructor(
    private readonly instance: InstanceSpec,
    networkInfo: NetworkInfo,
    extra: ConfigDriveExtra = {},
  ) {
    this.files = configDriveFiles(instance, networkInfo, extra);
  }

  lookup(rawPath: string): MetadataAnswer {
    let tokens = normalize(rawPath);
    // Anything but the OpenStack tree is EC2's (`/` lists EC2's versions), as in Nova.
    if (tokens[0] !== 'openstack' && tokens[0] !== 'ec2') tokens = ['ec2', ...tokens];
    if (tokens.length === 1) {
      const versions = tokens[0] === 'openstack' ? OPENSTACK_VERSIONS : EC2_VERSIONS;
      return text([...versions, 'latest'].join('\n'));
    }
    return tokens[0] === 'openstack' ? this.openstack(tokens.slice(1)) : this.ec2(tokens.slice(1));
  }

  private openstack([version, ...rest]: string[]): MetadataAnswer {
    if (version === 'content') {
      const file = rest.length === 1 ? this.files.get(`openstack/content/${rest[0]}`) : undefined;
      return file ? text(file) : notFound();
    }
    if (version !== 'latest' && !OPENSTACK_VERSIONS.includes(version)) return notFound();
    const prefix = `openstack/${version}/`;
    if (!rest.length) {
      const names = [...this.files.keys()].filter((path) => path.startsWith(prefix));
      return text(names.map((path) => path.slice(prefix.length)).join('\n'));
    }
    const file = rest.length === 1 ? this.files.get(prefix + rest[0]) : undefined;
    if (!file) return notFound();
    return text(file, rest[0].endsWith('.json') ? 'application/json' : 'text/plain');
  }

  private ec2([version, ...rest]: string[]): MetadataAnswer {
    if (version !== 'latest' && !EC2_VERSIONS.includes(version)) return notFound();
    const metaData = JSON.parse(this.files.get('ec2/latest/meta-data.json')!.toString()) as Tree;
    const keys = metaData['public-keys'] as Tree | undefined;
    if (keys && this.instance.keyName) (keys['0'] as Tree)._name = `0=${this.instance.keyName}`;
    const tree: Tree = { 'meta-data': metaData };
    const userData = this.files.get('ec2/latest/user-data');
    if (userData) tree['user-data'] = userData;
    let node: Tree[string] = tree;
    for (const token of rest) {
      if (!isTree(node) || token === '_name' || !Object.hasOwn(node, token)) return notFound();
      node = node[token];
    }
    if (Buffer.isBuffer(node)) return text(node);
    if (isTree(node)) return text(listing(node));
    return text(node === null ? '' : String(node));
  }
}

const isTree = (node: Tree[string]): node is Tree =>
  typeof node === 'object' && node !== null && !Buffer.isBuffer(node);

/** Nova's ec2_md_print of a directory: sorted keys, subdirectories with `/` or their `_name`. */
function listing(node: Tree): string {
  return Object.keys(node)
    .filter((key) => key !== '_name')
    .sort()
    .map((key) => {
      const child = node[key];
      if (!isTree(child)) return key;
      return typeof child._name === 'string' ? child._name : `${key}/`;
    })
    .join('\n');
}

/** The path's segments as posixpath.normpath leaves them: no empty ones, `.` dropped, `..` applied. */
function normalize(rawPath: string): string[] {
  const path = rawPath.split('?')[0];
  const tokens: string[] = [];
  for (const segment of path.split('/')) {
    let decoded = segment;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      /* kept as sent */
    }
    if (decoded === '' || decoded === '.') continue;
    if (decoded === '..') tokens.pop();
    else tokens.push(decoded);
  }
  return tokens;
}
