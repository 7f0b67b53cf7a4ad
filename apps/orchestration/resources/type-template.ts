import { Json, JsonMap } from '@novum/hot';
import { PropertySchema, PropertyType, ResourceType } from './types';

export type TemplateType = 'cfn' | 'hot';

const HOT_PARAMETER_TYPES: Record<PropertyType, string> = {
  string: 'string',
  integer: 'number',
  number: 'number',
  boolean: 'boolean',
  list: 'comma_delimited_list',
  map: 'json',
  any: 'json',
};

const CFN_PARAMETER_TYPES: Record<PropertyType, string> = {
  string: 'String',
  integer: 'Number',
  number: 'Number',
  boolean: 'Boolean',
  list: 'CommaDelimitedList',
  map: 'Json',
  any: 'Json',
};

/** Heat's `template_type` query parameter: cfn (the default) or hot. */
export function templateTypeOf(value: string | undefined): TemplateType | undefined {
  if (value === undefined) return 'cfn';
  const lower = value.toLowerCase();
  return lower === 'cfn' || lower === 'hot' ? lower : undefined;
}

function hotParameter(prop: PropertySchema): JsonMap {
  return {
    type: HOT_PARAMETER_TYPES[prop.type],
    description: prop.description,
    ...(prop.default !== undefined && prop.default !== null ? { default: prop.default } : {}),
    ...(prop.allowedValues ? { constraints: [{ allowed_values: prop.allowedValues }] } : {}),
  };
}

function cfnParameter(prop: PropertySchema): JsonMap {
  return {
    Type: CFN_PARAMETER_TYPES[prop.type],
    Description: prop.description,
    ...(prop.default !== undefined && prop.default !== null ? { Default: prop.default } : {}),
    ...(prop.allowedValues ? { AllowedValues: prop.allowedValues } : {}),
    ...(prop.type === 'boolean' ? { AllowedValues: ['True', 'true', 'False', 'false'] } : {}),
  };
}

/**
 * Heat's Resource.resource_to_template (`GET /resource_types/{type}/template`): a provider template that
 * mirrors the type, each property a parameter and each attribute an output, named after the type's class.
 */
export function resourceTypeTemplate(type: ResourceType, templateType: TemplateType): JsonMap {
  const resourceName = (type.name.split('::').pop() ?? type.name).replace(/[^A-Za-z0-9_]/g, '');
  const description = `Initial template of ${resourceName}`;
  const attributes: [string, string][] = [
    ...Object.entries(type.attributes).map(([name, schema]): [string, string] => [name, schema.description]),
    ['show', 'Detailed information about resource.'],
  ];
  const properties = Object.entries(type.anyProperties ? {} : type.properties);
  if (templateType === 'hot') {
    const outputs: Record<string, Json> = Object.fromEntries(
      attributes.map(([name, text]) => [
        name,
        { value: { get_attr: [resourceName, name] }, description: text },
      ]),
    );
    outputs['OS::stack_id'] = { value: { get_resource: resourceName } };
    return {
      heat_template_version: '2016-10-14',
      description,
      parameters: Object.fromEntries(properties.map(([name, prop]) => [name, hotParameter(prop)])),
      outputs,
      resources: {
        [resourceName]: {
          type: type.name,
          properties: Object.fromEntries(properties.map(([name]) => [name, { get_param: name }])),
        },
      },
    };
  }
  const outputs: Record<string, Json> = Object.fromEntries(
    attributes.map(([name, text]) => [
      name,
      { Value: { 'Fn::GetAtt': [resourceName, name] }, Description: text },
    ]),
  );
  outputs['OS::stack_id'] = { Value: { Ref: resourceName } };
  return {
    HeatTemplateFormatVersion: '2012-12-12',
    Description: description,
    Parameters: Object.fromEntries(properties.map(([name, prop]) => [name, cfnParameter(prop)])),
    Resources: {
      [resourceName]: {
        Type: type.name,
        Properties: Object.fromEntries(
          properties.map(([name, prop]): [string, Json] => [
            name,
            prop.type === 'list' ? { 'Fn::Split': [',', { Ref: name }] } : { Ref: name },
          ]),
        ),
      },
    },
    Outputs: outputs,
  };
}
