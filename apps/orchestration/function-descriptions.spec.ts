import { functionsOf, HOT_VERSIONS } from '@novum/hot';
import { functionDescription } from './function-descriptions';

describe('template function descriptions', () => {
  it("gives each function the first line of Heat's documentation of it", () => {
    expect(functionDescription('get_file', '2016-04-08')).toBe('A function for including a file inline.');
    expect(functionDescription('make_url', '2017-09-01')).toBe(
      'A function for performing substitutions on maps.',
    );
  });

  it('follows the class a version implements a function with', () => {
    expect(functionDescription('list_join', '2015-04-30')).toBe('A function for joining strings.');
    expect(functionDescription('list_join', '2015-10-15')).toBe(
      'A function for joining one or more lists of strings.',
    );
    expect(functionDescription('repeat', '2016-04-08')).toBe(
      'A function for iterating over a list of items.',
    );
    expect(functionDescription('repeat', '2016-10-14')).toBe(
      'A function for iterating over a list of items or a dict of keys.',
    );
  });

  it('describes every function of every version', () => {
    for (const version of HOT_VERSIONS) {
      for (const name of functionsOf(version)) {
        expect(functionDescription(name, version)).toMatch(/^A (placeholder )?function /);
      }
    }
  });
});
