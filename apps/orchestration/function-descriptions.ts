import { HotVersion } from '@novum/hot';

/**
 * What `template_versions/{version}/functions` says of each function: the first line of the documentation of
 * the class Heat implements it with in that version (heat/engine/hot/functions.py, cfn/functions.py).
 */
const DESCRIPTIONS: Record<string, string> = {
  get_attr: 'A function for resolving resource attributes.',
  get_file: 'A function for including a file inline.',
  get_param: 'A function for resolving parameter references.',
  get_resource: 'A function for resolving resource references.',
  str_replace: 'A function for performing string substitutions.',
  str_replace_strict: 'A function for performing string substitutions.',
  str_replace_vstrict: 'A function for performing string substitutions.',
  resource_facade: 'A function for retrieving data in a parent provider template.',
  digest: 'A function for performing digest operations.',
  str_split: 'A function for splitting delimited strings into a list.',
  map_merge: 'A function for merging maps.',
  map_replace: 'A function for performing substitutions on maps.',
  yaql: 'A function for executing a yaql expression.',
  if: 'A function to return corresponding value based on condition evaluation.',
  filter: 'A function for filtering out values from lists.',
  // Heat's MakeURL class carries this line.
  make_url: 'A function for performing substitutions on maps.',
  list_concat: 'A function for extending lists.',
  list_concat_unique: 'A function for extending lists with unique items.',
  contains: 'A function for checking whether specific value is in sequence.',
  equals: 'A function for comparing whether two values are equal.',
  not: 'A function that acts as a NOT operator on a condition.',
  and: 'A function that acts as an AND operator on conditions.',
  or: 'A function that acts as an OR operator on conditions.',
  'Fn::Select': 'A function for selecting an item from a list or map.',
  'Fn::Base64': 'A placeholder function for converting to base64.',
  'Fn::GetAZs': 'A function for retrieving the availability zones.',
  'Fn::Join': 'A function for joining strings.',
  'Fn::MemberListToMap': 'A function to convert lists with enumerated keys and values to mapping.',
  'Fn::Replace': 'A function for performing string substitutions.',
  'Fn::ResourceFacade': 'A function for retrieving data in a parent provider template.',
  'Fn::Split': 'A function for splitting strings.',
  Ref: 'A function for resolving parameters or resource references.',
};

/** Heat's description of a template function as the given version implements it. */
export function functionDescription(name: string, version: HotVersion): string {
  if (name === 'list_join')
    return version < '2015-10-15'
      ? 'A function for joining strings.'
      : 'A function for joining one or more lists of strings.';
  if (name === 'repeat')
    return version < '2016-10-14'
      ? 'A function for iterating over a list of items.'
      : 'A function for iterating over a list of items or a dict of keys.';
  return DESCRIPTIONS[name] ?? `The ${name} function.`;
}
