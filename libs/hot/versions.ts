/** The HOT versions Heat accepts (`heat_template_version`), by date, with their release-name aliases. */
export const HOT_VERSIONS = [
  '2013-05-23',
  '2014-10-16',
  '2015-04-30',
  '2015-10-15',
  '2016-04-08',
  '2016-10-14',
  '2017-02-24',
  '2017-09-01',
  '2018-03-02',
  '2018-08-31',
  '2021-04-16',
] as const;
export type HotVersion = (typeof HOT_VERSIONS)[number];

export const VERSION_ALIASES: Record<string, HotVersion> = {
  newton: '2016-10-14',
  ocata: '2017-02-24',
  pike: '2017-09-01',
  queens: '2018-03-02',
  rocky: '2018-08-31',
  wallaby: '2021-04-16',
};

/** Every function name any HOT version knows, with the version that added it and the one that removed it. */
const FUNCTION_HISTORY: Record<string, { since: HotVersion; until?: HotVersion }> = {
  get_attr: { since: '2013-05-23' },
  get_file: { since: '2013-05-23' },
  get_param: { since: '2013-05-23' },
  get_resource: { since: '2013-05-23' },
  list_join: { since: '2013-05-23' },
  str_replace: { since: '2013-05-23' },
  resource_facade: { since: '2013-05-23' },
  'Fn::Select': { since: '2013-05-23', until: '2015-10-15' },
  'Fn::Base64': { since: '2013-05-23', until: '2014-10-16' },
  'Fn::GetAZs': { since: '2013-05-23', until: '2014-10-16' },
  'Fn::Join': { since: '2013-05-23', until: '2014-10-16' },
  'Fn::MemberListToMap': { since: '2013-05-23', until: '2014-10-16' },
  'Fn::Replace': { since: '2013-05-23', until: '2014-10-16' },
  'Fn::ResourceFacade': { since: '2013-05-23', until: '2014-10-16' },
  'Fn::Split': { since: '2013-05-23', until: '2014-10-16' },
  Ref: { since: '2013-05-23', until: '2014-10-16' },
  repeat: { since: '2015-04-30' },
  digest: { since: '2015-04-30' },
  str_split: { since: '2015-10-15' },
  map_merge: { since: '2016-04-08' },
  yaql: { since: '2016-10-14' },
  map_replace: { since: '2016-10-14' },
  if: { since: '2016-10-14' },
  filter: { since: '2017-02-24' },
  str_replace_strict: { since: '2017-02-24' },
  make_url: { since: '2017-09-01' },
  list_concat: { since: '2017-09-01' },
  list_concat_unique: { since: '2017-09-01' },
  str_replace_vstrict: { since: '2017-09-01' },
  contains: { since: '2017-09-01' },
};

const CONDITION_FUNCTION_HISTORY: Record<string, HotVersion> = {
  get_param: '2016-10-14',
  equals: '2016-10-14',
  not: '2016-10-14',
  and: '2016-10-14',
  or: '2016-10-14',
  yaql: '2017-09-01',
  contains: '2017-09-01',
};

/** Functions this implementation evaluates; the others of a version are refused with a clear message. */
export const UNSUPPORTED_FUNCTIONS = new Set([
  'yaql',
  'resource_facade',
  'Fn::Select',
  'Fn::Base64',
  'Fn::GetAZs',
  'Fn::Join',
  'Fn::MemberListToMap',
  'Fn::Replace',
  'Fn::ResourceFacade',
  'Fn::Split',
  'Ref',
]);

export const ALL_FUNCTION_NAMES = new Set([
  ...Object.keys(FUNCTION_HISTORY),
  ...Object.keys(CONDITION_FUNCTION_HISTORY),
]);

export function atLeast(version: HotVersion, since: HotVersion): boolean {
  return version >= since;
}

/** The functions a version offers in resources, outputs and properties. */
export function functionsOf(version: HotVersion): string[] {
  return Object.entries(FUNCTION_HISTORY)
    .filter(([, h]) => version >= h.since && (!h.until || version < h.until))
    .map(([name]) => name);
}

/** The functions a version offers inside the `conditions` section (none before 2016-10-14). */
export function conditionFunctionsOf(version: HotVersion): string[] {
  return Object.entries(CONDITION_FUNCTION_HISTORY)
    .filter(([, since]) => version >= since)
    .map(([name]) => name);
}

/** Resolves a `heat_template_version` value (a date or a release name) to its date, or undefined. */
export function resolveVersion(value: unknown): HotVersion | undefined {
  const text = String(value);
  if ((HOT_VERSIONS as readonly string[]).includes(text)) return text as HotVersion;
  return VERSION_ALIASES[text];
}

/** Heat's `template_versions` listing: one entry per date and alias. */
export function templateVersions(): { version: string; type: 'hot'; aliases: string[] }[] {
  return HOT_VERSIONS.map((date) => ({
    version: `heat_template_version.${date}`,
    type: 'hot' as const,
    aliases: Object.entries(VERSION_ALIASES)
      .filter(([, v]) => v === date)
      .map(([alias]) => `heat_template_version.${alias}`),
  }));
}
