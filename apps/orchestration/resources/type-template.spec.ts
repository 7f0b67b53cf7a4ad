import { resourceType } from './registry';
import { resourceTypeTemplate, templateTypeOf } from './type-template';
import { ResourceType } from './types';

const sample: ResourceType = {
  name: 'OS::Test::Sample',
  description: 'A sample.',
  properties: {
    size: { type: 'integer', description: 'Size.', default: 1 },
    names: { type: 'list', description: 'Names.' },
    mode: { type: 'string', description: 'Mode.', allowedValues: ['a', 'b'] },
    enabled: { type: 'boolean', description: 'Enabled.' },
  },
  attributes: { value: { description: 'The value.' } },
  create: async () => ({ physicalId: null, data: {} }),
  delete: async () => undefined,
  attribute: () => null,
};

describe('resource type templates', () => {
  it('reads template_type as Heat does: cfn by default, cfn or hot in any case, else nothing', () => {
    expect(templateTypeOf(undefined)).toBe('cfn');
    expect(templateTypeOf('HOT')).toBe('hot');
    expect(templateTypeOf('yaml')).toBeUndefined();
  });

  it('mirrors the type as a HOT provider template: properties as parameters, attributes as outputs', () => {
    expect(resourceTypeTemplate(sample, 'hot')).toEqual({
      heat_template_version: '2016-10-14',
      description: 'Initial template of Sample',
      parameters: {
        size: { type: 'number', description: 'Size.', default: 1 },
        names: { type: 'comma_delimited_list', description: 'Names.' },
        mode: { type: 'string', description: 'Mode.', constraints: [{ allowed_values: ['a', 'b'] }] },
        enabled: { type: 'boolean', description: 'Enabled.' },
      },
      outputs: {
        value: { value: { get_attr: ['Sample', 'value'] }, description: 'The value.' },
        show: {
          value: { get_attr: ['Sample', 'show'] },
          description: 'Detailed information about resource.',
        },
        'OS::stack_id': { value: { get_resource: 'Sample' } },
      },
      resources: {
        Sample: {
          type: 'OS::Test::Sample',
          properties: {
            size: { get_param: 'size' },
            names: { get_param: 'names' },
            mode: { get_param: 'mode' },
            enabled: { get_param: 'enabled' },
          },
        },
      },
    });
  });

  it('writes the CFN form with Ref, Fn::Split for lists and the boolean allowed values', () => {
    const template = resourceTypeTemplate(sample, 'cfn') as Record<string, any>;
    expect(template.HeatTemplateFormatVersion).toBe('2012-12-12');
    expect(template.Parameters.names).toEqual({ Type: 'CommaDelimitedList', Description: 'Names.' });
    expect(template.Parameters.enabled.AllowedValues).toEqual(['True', 'true', 'False', 'false']);
    expect(template.Resources.Sample.Properties).toEqual({
      size: { Ref: 'size' },
      names: { 'Fn::Split': [',', { Ref: 'names' }] },
      mode: { Ref: 'mode' },
      enabled: { Ref: 'enabled' },
    });
    expect(template.Outputs['OS::stack_id']).toEqual({ Value: { Ref: 'Sample' } });
  });

  it('generates the registered TestResource under its class name', () => {
    const template = resourceTypeTemplate(
      resourceType('OS::Heat::TestResource') as ResourceType,
      'hot',
    ) as Record<string, any>;
    expect(template.resources.TestResource.type).toBe('OS::Heat::TestResource');
    expect(template.parameters.value.type).toBe('string');
  });
});
