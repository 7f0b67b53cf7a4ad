import { BadRequestError } from '@novum/common';
import { validateExtraSpecs } from './extra-specs';

describe('validateExtraSpecs', () => {
  it('keeps custom namespaces and turns numbers and booleans into strings', () => {
    expect(validateExtraSpecs({ 'foo:bar': 'baz', 'hw:numa_nodes': 2, 'hw:boot_menu': true }, true)).toEqual({
      'foo:bar': 'baz',
      'hw:numa_nodes': '2',
      'hw:boot_menu': 'true',
    });
  });

  it('validates novum:driver at every microversion', () => {
    expect(validateExtraSpecs({ 'novum:driver': 'container' }, false)).toEqual({
      'novum:driver': 'container',
    });
    expect(() => validateExtraSpecs({ 'novum:driver': 'xen' }, false)).toThrow(BadRequestError);
    expect(() => validateExtraSpecs({ 'novum:other': 'x' }, false)).toThrow(BadRequestError);
  });

  it('validates the known namespaces from 2.86 only, as Nova does', () => {
    expect(validateExtraSpecs({ 'hw:cpu_policy': 'sometimes' }, false)).toEqual({
      'hw:cpu_policy': 'sometimes',
    });
    expect(() => validateExtraSpecs({ 'hw:cpu_policy': 'sometimes' }, true)).toThrow(
      "Validation failed; 'sometimes' is not a valid value for extra spec 'hw:cpu_policy'.",
    );
    expect(() => validateExtraSpecs({ 'hw:no_such_thing': '1' }, true)).toThrow('not a known extra spec');
    expect(
      validateExtraSpecs({ 'resources:VCPU': '2', 'trait:HW_CPU_X86_AVX2': 'required' }, true),
    ).toBeTruthy();
    expect(() => validateExtraSpecs({ 'resources:VCPU': '-1' }, true)).toThrow(BadRequestError);
    expect(() => validateExtraSpecs({ 'trait:HW_CPU_X86_AVX2': 'maybe' }, true)).toThrow(BadRequestError);
    expect(() => validateExtraSpecs({ 'quota:cpu_period': 'x' }, true)).toThrow(BadRequestError);
  });

  it('refuses bad keys and values of any namespace', () => {
    expect(() => validateExtraSpecs({ 'bad/key': 'x' }, false)).toThrow(BadRequestError);
    expect(() => validateExtraSpecs({ '': 'x' }, false)).toThrow(BadRequestError);
    expect(() => validateExtraSpecs({ key: 'x'.repeat(256) }, false)).toThrow(BadRequestError);
    expect(() => validateExtraSpecs({ key: { nested: 1 } }, false)).toThrow(BadRequestError);
  });
});
