import { HotError } from './errors';

/**
 * Which resource needs which (Heat's `dependencies.py`): an edge from a resource to each one it refers to
 * or names in depends_on. Creation follows the edges' reverse (requirements first), deletion the edges.
 */
export class DependencyGraph {
  private readonly requires = new Map<string, Set<string>>();
  /** The reverse edges, each list in template order (so that dependents() is not a scan of every resource). */
  private readonly requiredBy = new Map<string, string[]>();

  constructor(edges: Map<string, Iterable<string>>) {
    for (const [name, deps] of edges) this.requires.set(name, new Set(deps));
    for (const deps of this.requires.values()) {
      for (const dep of deps) if (!this.requires.has(dep)) this.requires.set(dep, new Set());
    }
    for (const [name, deps] of this.requires) {
      for (const dep of deps) {
        const list = this.requiredBy.get(dep);
        if (list) list.push(name);
        else this.requiredBy.set(dep, [name]);
      }
    }
    this.checkAcyclic();
  }

  get names(): string[] {
    return [...this.requires.keys()];
  }

  /** The resources `name` needs (created before it, deleted after it). */
  requirements(name: string): string[] {
    return [...(this.requires.get(name) ?? [])];
  }

  /** The resources that need `name`. */
  dependents(name: string): string[] {
    return [...(this.requiredBy.get(name) ?? [])];
  }

  /** A creation order: every resource after all it requires (ties in template order). */
  creationOrder(): string[] {
    const done = new Set<string>();
    const order: string[] = [];
    const visit = (name: string) => {
      if (done.has(name)) return;
      done.add(name);
      for (const dep of this.requires.get(name) ?? []) visit(dep);
      order.push(name);
    };
    for (const name of this.requires.keys()) visit(name);
    return order;
  }

  /** Creation order in waves: each wave's resources need only earlier waves, so a wave can run in parallel. */
  waves(): string[][] {
    const level = new Map<string, number>();
    for (const name of this.creationOrder()) {
      const deps = [...(this.requires.get(name) ?? [])];
      level.set(name, deps.length ? Math.max(...deps.map((d) => level.get(d) as number)) + 1 : 0);
    }
    const waves: string[][] = [];
    for (const [name, n] of level) (waves[n] ??= []).push(name);
    return waves;
  }

  private checkAcyclic(): void {
    const state = new Map<string, 'visiting' | 'done'>();
    const stack: string[] = [];
    const visit = (name: string) => {
      if (state.get(name) === 'done') return;
      if (state.get(name) === 'visiting') {
        const cycle = [...stack.slice(stack.indexOf(name)), name];
        throw new HotError(`Circular Dependency Found: ${cycle.join(' -> ')}`);
      }
      state.set(name, 'visiting');
      stack.push(name);
      for (const dep of this.requires.get(name) ?? []) visit(dep);
      stack.pop();
      state.set(name, 'done');
    };
    for (const name of this.requires.keys()) visit(name);
  }
}
