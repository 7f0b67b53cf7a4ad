import { HotError } from './errors';
import { checkNesting, MAX_NESTING, parseTemplate, parseTemplateText } from './parse';

const nested = (depth: number): unknown => {
  let value: unknown = 'x';
  for (let i = 0; i < depth; i++) value = [value];
  return value;
};

describe('template nesting limits', () => {
  it('accepts values nested up to the limit and refuses deeper ones with a template error', () => {
    expect(() => checkNesting({ a: nested(MAX_NESTING - 1) })).not.toThrow();
    expect(() => checkNesting({ a: nested(MAX_NESTING) })).toThrow(HotError);
    expect(() =>
      parseTemplate({ heat_template_version: '2021-04-16', resources: { a: nested(20_000) } } as never),
    ).toThrow('The template is nested deeper than 1000 levels.');
    const text = `{"heat_template_version": "2021-04-16", "x": ${'['.repeat(20_000)}${']'.repeat(20_000)}}`;
    expect(() => parseTemplateText(text)).toThrow('The template is nested deeper than 1000 levels.');
  });

  it('refuses YAML aliases that expand to a billion values, quickly', () => {
    const levels = 'abcdefghi'.split('');
    const lines = [`a: &a [${Array(9).fill('"x"').join(',')}]`];
    for (let i = 1; i < levels.length; i++)
      lines.push(
        `${levels[i]}: &${levels[i]} [${Array(9)
          .fill(`*${levels[i - 1]}`)
          .join(',')}]`,
      );
    const started = Date.now();
    expect(() => parseTemplateText(`${lines.join('\n')}\n`)).toThrow(/expands to more than/);
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
