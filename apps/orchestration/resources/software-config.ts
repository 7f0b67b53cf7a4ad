import { randomBytes, randomUUID } from 'node:crypto';
import { Json, JsonMap } from '@novum/hot';
import { dump } from 'js-yaml';
import { ActionContext, ResourceState, ResourceType } from './types';

/**
 * Heat's software config resources, kept as the resource's own data instead of a configs API: the physical
 * id is the config's id, which OS::Nova::Server user_data and MultipartMime parts resolve to the content
 * (ActionContext.softwareConfig). A change replaces the config, and so the servers that boot from it.
 */
function configResource(
  type: Pick<ResourceType, 'name' | 'description' | 'properties' | 'validate'>,
  content: (ctx: ActionContext, props: JsonMap) => Promise<string>,
  group: (props: JsonMap) => string = () => 'Heat::Ungrouped',
): ResourceType {
  return {
    ...type,
    attributes: { config: { description: 'The config value of the software config.' } },
    async create(ctx, props) {
      const config = await content(ctx, props);
      return {
        physicalId: randomUUID(),
        data: { name: ctx.physicalName, group: group(props), config, properties: props },
      };
    },
    async delete() {},
    attribute: (state: ResourceState, name: string): Json => {
      if (name === 'config') return (state.data.config as Json) ?? null;
      if (name === 'show') {
        const props = (state.data.properties as JsonMap | undefined) ?? {};
        return {
          id: state.physicalId,
          name: state.data.name ?? null,
          group: state.data.group ?? null,
          config: state.data.config ?? null,
          inputs: props.inputs ?? [],
          outputs: props.outputs ?? [],
          options: props.options ?? {},
        };
      }
      return null;
    },
  };
}

const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

/** A value that names a software config (Heat's uuidutils.is_uuid_like), resolved to its content when known. */
export async function configContent(ctx: ActionContext, value: string): Promise<string> {
  if (!UUID.test(value) || !ctx.softwareConfig) return value;
  return (await ctx.softwareConfig(value)) ?? value;
}

const ioSchema = (what: string) => ({
  type: 'list' as const,
  description: `Schema representing the ${what} that this software config is expecting.`,
});

export const softwareConfig = configResource(
  {
    name: 'OS::Heat::SoftwareConfig',
    description: 'A resource for describing and storing software configuration.',
    properties: {
      group: {
        type: 'string',
        description: 'Namespace to group this software config by when delivered to a server.',
        default: 'Heat::Ungrouped',
      },
      config: {
        type: 'string',
        description:
          'Configuration script or manifest which specifies what actual configuration is performed.',
      },
      options: {
        type: 'map',
        description:
          'Map containing options specific to the configuration management tool used by this resource.',
      },
      inputs: ioSchema('inputs'),
      outputs: ioSchema('outputs'),
    },
  },
  async (_ctx, props) => (props.config as string | null) ?? '',
  (props) => props.group as string,
);

export const cloudConfig = configResource(
  {
    name: 'OS::Heat::CloudConfig',
    description: 'A configuration resource for representing cloud-init cloud-config.',
    properties: {
      cloud_config: {
        type: 'map',
        description: 'Map representing the cloud-config data structure which will be formatted as YAML.',
      },
    },
  },
  async (_ctx, props) => `#cloud-config\n${dump(props.cloud_config ?? {}, { lineWidth: -1 })}`,
);

/** One part of a multi-part MIME message: its text/* subtype, filename and content. */
interface MimePart {
  subtype: string;
  filename?: string;
  content: string;
}

/** Python's email package boundary shape (`===============<digits>==`). */
function boundary(): string {
  const digits = BigInt(`0x${randomBytes(8).toString('hex')}`)
    .toString()
    .padStart(19, '0');
  return `===============${digits.slice(0, 19)}==`;
}

/** A MIMEText part: us-ascii 7bit when it can be, else utf-8 in base64 (as Python's email does). */
function textPart(part: MimePart): string {
  const ascii = /^[\x00-\x7f]*$/.test(part.content);
  const headers = [
    `Content-Type: text/${part.subtype}; charset="${ascii ? 'us-ascii' : 'utf-8'}"`,
    'MIME-Version: 1.0',
    `Content-Transfer-Encoding: ${ascii ? '7bit' : 'base64'}`,
  ];
  if (part.filename) headers.push(`Content-Disposition: attachment; filename="${part.filename}"`);
  const body = ascii
    ? part.content
    : (Buffer.from(part.content, 'utf8')
        .toString('base64')
        .match(/.{1,76}/g)
        ?.join('\n') ?? '');
  return `${headers.join('\n')}\n\n${body}`;
}

/** MIMEMultipart(_subparts=...).as_string(): a multipart/mixed message of the parts. */
export function multipartMessage(parts: MimePart[]): string {
  const mark = boundary();
  const lines = [`Content-Type: multipart/mixed; boundary="${mark}"`, 'MIME-Version: 1.0', ''];
  for (const part of parts) lines.push(`--${mark}`, textPart(part));
  lines.push(`--${mark}--`, '');
  return lines.join('\n');
}

/** Splits a message's header block into lower-cased names and values (folded lines joined). */
function headersOf(block: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of block.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) out[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return out;
}

const param = (header: string | undefined, name: string) =>
  header ? new RegExp(`${name}="?([^";]+)"?`, 'i').exec(header)?.[1] : undefined;

/** The parts of a multi-part message (nothing when it is not one, as Heat's _append_multiparts). */
export function partsOf(message: string): MimePart[] {
  const split = message.search(/\r?\n\r?\n/);
  if (split < 0) return [];
  const headers = headersOf(message.slice(0, split));
  const contentType = headers['content-type'] ?? '';
  const mark = param(contentType, 'boundary');
  if (!/^multipart\//i.test(contentType) || !mark) return [];
  const body = message.slice(split).replace(/^\r?\n\r?\n/, '');
  const sections = body.split(`--${mark}`).slice(1);
  const parts: MimePart[] = [];
  for (const section of sections) {
    if (section.startsWith('--')) break;
    const text = section.replace(/^\r?\n/, '');
    const end = text.search(/\r?\n\r?\n/);
    const partHeaders = headersOf(end < 0 ? text : text.slice(0, end));
    let content =
      end < 0
        ? ''
        : text
            .slice(end)
            .replace(/^\r?\n\r?\n/, '')
            .replace(/\r?\n$/, '');
    if (/base64/i.test(partHeaders['content-transfer-encoding'] ?? ''))
      content = Buffer.from(content.replace(/\s+/g, ''), 'base64').toString('utf8');
    const subtype = /^text\/([^;\s]+)/i.exec(partHeaders['content-type'] ?? '')?.[1] ?? 'plain';
    parts.push({ subtype, filename: param(partHeaders['content-disposition'], 'filename'), content });
  }
  return parts;
}

export const multipartMime = configResource(
  {
    name: 'OS::Heat::MultipartMime',
    description: 'Assembles a collection of software configurations as a multi-part mime message.',
    properties: {
      parts: {
        type: 'list',
        description: 'Parts belonging to this message.',
        default: [],
        item: {
          type: 'map',
          description: 'A part of the message.',
          schema: {
            config: {
              type: 'string',
              description:
                'Content of part to attach, either inline or by referencing the ID of another software config resource',
              required: true,
            },
            filename: { type: 'string', description: 'Optional filename to associate with part.' },
            type: {
              type: 'string',
              description: 'Whether the part content is text or multipart.',
              default: 'text',
              allowedValues: ['text', 'multipart'],
            },
            subtype: { type: 'string', description: 'Optional subtype to specify with the type.' },
          },
        },
      },
    },
  },
  async (ctx, props) => {
    const parts: MimePart[] = [];
    for (const item of props.parts as JsonMap[]) {
      const content = await configContent(ctx, item.config as string);
      if (item.type === 'multipart') parts.push(...partsOf(content));
      else
        parts.push({
          subtype: (item.subtype as string | null) || 'plain',
          filename: (item.filename as string | null) ?? undefined,
          content,
        });
    }
    return multipartMessage(parts);
  },
);
