import { HotError } from './errors';
import { EvalScope, evaluate, evaluateCondition, referencedResources, selectPath } from './functions';
import { DependencyGraph } from './graph';
import {
  checkCustomConstraints,
  CustomConstraintCheck,
  ParameterSchema,
  parseParameterSchemas,
  resolveParameters,
} from './parameters';
import { isMap, Json, JsonMap, OutputSnippet, parseTemplate, ParsedTemplate, ResourceSnippet } from './parse';
import { atLeast } from './versions';

/** What a bound template knows of one resource of the running stack. */
export interface ResourceView {
  /** The resource's reference (get_resource): its physical id, or null before creation. */
  ref: Json;
  attribute(name: string): Json;
  /** An attribute with a get_attr path below it, where the type applies the path itself (group members). */
  attributeAt?(name: string, path: Json[]): Json;
  allAttributes(): Json;
}

export interface StackIdentity {
  name: string;
  id: string;
  projectId: string;
}

export interface BindOptions {
  params?: Record<string, Json>;
  parameterDefaults?: Record<string, Json>;
  files?: Record<string, string>;
  stack: StackIdentity;
  /** The live resources (by name); missing ones evaluate as not yet created. */
  resource?: (name: string) => ResourceView | undefined;
  /** Throws an Error when the resource's type has no such attribute (for validation). */
  checkAttribute?: (resourceName: string, type: string, attribute: string) => void;
  /** False for validate-only without values (template validate): missing parameters are not an error. */
  requireValues?: boolean;
}

/** A parsed, structurally valid HOT template: parse once, bind to parameters and a stack to evaluate. */
export class HotTemplate {
  readonly parameterSchemas: ParameterSchema[];

  private constructor(readonly parsed: ParsedTemplate) {
    this.parameterSchemas = parseParameterSchemas(parsed.parameters);
    for (const [i, group] of parsed.parameterGroups.entries()) validateGroup(group, i, this.parameterSchemas);
  }

  static parse(input: string | JsonMap): HotTemplate {
    return new HotTemplate(parseTemplate(input));
  }

  get version() {
    return this.parsed.version;
  }

  bind(options: BindOptions): BoundTemplate {
    return new BoundTemplate(this, options);
  }
}

function validateGroup(group: Json, index: number, schemas: ParameterSchema[]): void {
  const path = ['parameter_groups', index];
  if (!isMap(group)) throw new HotError('Parameter groups should be a map.', path);
  const params = group.parameters;
  if (!Array.isArray(params))
    throw new HotError('Parameters must be provided for each Parameter Group.', path);
  for (const name of params) {
    if (!schemas.some((s) => s.name === name)) {
      throw new HotError(`The grouped parameter ${String(name)} does not reference a valid parameter.`, path);
    }
  }
}

/** A template with parameter values and (optionally) live resources: evaluates conditions, properties, outputs. */
export class BoundTemplate implements EvalScope {
  readonly values: Record<string, Json>;
  readonly files: Record<string, string>;
  private readonly conditionCache = new Map<string, boolean | 'evaluating'>();
  private readonly enabled: ResourceSnippet[];

  constructor(
    readonly template: HotTemplate,
    private readonly options: BindOptions,
  ) {
    this.files = options.files ?? {};
    this.values = resolveParameters(
      template.parameterSchemas,
      options.params ?? {},
      options.parameterDefaults ?? {},
      { requireValues: options.requireValues },
    ).values;
    for (const name of Object.keys(template.parsed.conditions)) this.condition(name);
    this.enabled = template.parsed.resources.filter((snippet) => this.resourceEnabled(snippet));
  }

  get version() {
    return this.template.version;
  }

  /** Checks custom constraints (flavors, images, key pairs, networks) through the cloud. */
  async checkCustomConstraints(check: CustomConstraintCheck): Promise<void> {
    await checkCustomConstraints({ schemas: this.template.parameterSchemas, values: this.values }, check);
  }

  param(name: string): Json {
    switch (name) {
      case 'OS::stack_name':
        return this.options.stack.name;
      case 'OS::stack_id':
        return this.options.stack.id;
      case 'OS::project_id':
        return this.options.stack.projectId;
    }
    if (!this.template.parameterSchemas.some((s) => s.name === name)) {
      throw new HotError(`The Parameter (${name}) was not provided.`);
    }
    return this.values[name] ?? null;
  }

  hasResource(name: string): boolean {
    return this.enabled.some((r) => r.name === name);
  }

  resourceRef(name: string): Json {
    return this.options.resource?.(name)?.ref ?? null;
  }

  resourceAttr(name: string, attribute: string, path: Json[] = []): Json {
    const snippet = this.enabled.find((r) => r.name === name);
    if (snippet && this.options.checkAttribute) {
      try {
        this.options.checkAttribute(name, snippet.type, attribute);
      } catch {
        throw new HotError(`The Referenced Attribute (${name} ${attribute}) is incorrect.`);
      }
    }
    const view = this.options.resource?.(name);
    if (!view) return null;
    if (view.attributeAt) return view.attributeAt(attribute, path);
    return selectPath(view.attribute(attribute), path);
  }

  allAttributes(name: string): Json {
    return this.options.resource?.(name)?.allAttributes() ?? null;
  }

  condition(name: string): boolean {
    const cached = this.conditionCache.get(name);
    if (cached === 'evaluating')
      throw new HotError(`Circular definition for condition "${name}"`, ['conditions', name]);
    if (cached !== undefined) return cached;
    if (!(name in this.template.parsed.conditions)) {
      throw new HotError(`Invalid condition "${name}"`);
    }
    this.conditionCache.set(name, 'evaluating');
    const result = evaluateCondition(this.template.parsed.conditions[name], this, ['conditions', name]);
    if (typeof result !== 'boolean') {
      throw new HotError(`The definition of condition "${name}" is invalid: it must be a boolean`, [
        'conditions',
        name,
      ]);
    }
    this.conditionCache.set(name, result);
    return result;
  }

  private resourceEnabled(snippet: ResourceSnippet): boolean {
    if (snippet.condition === undefined || snippet.condition === null) return true;
    const path = ['resources', snippet.name, 'condition'];
    const value = snippet.condition;
    if (typeof value === 'boolean') return value;
    if (typeof value === 'string') {
      try {
        return this.condition(value);
      } catch (error) {
        throw error instanceof HotError && !error.path.length ? error.under(path) : error;
      }
    }
    if (!atLeast(this.version, '2017-09-01')) {
      throw new HotError('Invalid condition: a condition name or a boolean is expected', path);
    }
    return evaluateCondition(value, this, path);
  }

  /** The resources of the stack (conditions applied), in template order. */
  resources(): ResourceSnippet[] {
    return this.enabled;
  }

  resource(name: string): ResourceSnippet | undefined {
    return this.enabled.find((r) => r.name === name);
  }

  /** The dependency graph; refuses references to unknown resources and cycles. */
  graph(): DependencyGraph {
    const edges = new Map<string, Set<string>>();
    for (const snippet of this.enabled) {
      const deps = new Set<string>();
      for (const [field, value] of [
        ['properties', snippet.properties],
        ['metadata', snippet.metadata],
      ] as const) {
        for (const ref of referencedResources(value)) {
          if (ref === snippet.name || !this.hasResource(ref)) {
            throw new HotError(`The specified reference "${ref}" (in ${snippet.name}) is incorrect.`, [
              'resources',
              snippet.name,
              field,
            ]);
          }
          deps.add(ref);
        }
      }
      for (const dep of snippet.dependsOn) {
        if (!this.hasResource(dep) || dep === snippet.name) {
          throw new HotError(`The specified reference "${dep}" (in ${snippet.name}) is incorrect.`, [
            'resources',
            snippet.name,
            'depends_on',
          ]);
        }
        deps.add(dep);
      }
      edges.set(snippet.name, deps);
    }
    return new DependencyGraph(edges);
  }

  /** A resource's properties with every function evaluated against the current state. */
  properties(name: string): JsonMap {
    const snippet = this.resource(name);
    if (!snippet) throw new HotError(`The Resource (${name}) could not be found.`);
    const value = evaluate(snippet.properties, this, ['resources', name, 'properties']);
    return isMap(value) ? value : {};
  }

  /** The resource's update_policy with its functions evaluated (Heat's ResourceDefinition.update_policy). */
  updatePolicy(name: string): JsonMap {
    const snippet = this.resource(name);
    if (!snippet) return {};
    const value = evaluate(snippet.updatePolicy, this, ['resources', name, 'update_policy']);
    return isMap(value) ? value : {};
  }

  metadata(name: string): JsonMap {
    const snippet = this.resource(name);
    if (!snippet) return {};
    const value = evaluate(snippet.metadata, this, ['resources', name, 'metadata']);
    return isMap(value) ? value : {};
  }

  outputs(): OutputSnippet[] {
    return this.template.parsed.outputs;
  }

  /** One output's value; a failing output gives its error message instead (as Heat's output_error). */
  output(snippet: OutputSnippet): { value: Json; error?: string } {
    try {
      if (snippet.condition !== undefined && snippet.condition !== null) {
        const path = ['outputs', snippet.name, 'condition'];
        const enabled = evaluateCondition(snippet.condition, this, path);
        if (!enabled) return { value: null };
      }
      return { value: evaluate(snippet.value, this, ['outputs', snippet.name, 'value']) };
    } catch (error) {
      return { value: null, error: (error as Error).message };
    }
  }

  /** Everything a create checks before touching the cloud: graph, every function of every resource and output. */
  validate(): DependencyGraph {
    const graph = this.graph();
    for (const snippet of this.enabled) {
      this.properties(snippet.name);
      this.metadata(snippet.name);
    }
    for (const snippet of this.outputs()) {
      if (snippet.condition !== undefined && snippet.condition !== null) {
        evaluateCondition(snippet.condition, this, ['outputs', snippet.name, 'condition']);
      }
      evaluate(snippet.value, this, ['outputs', snippet.name, 'value']);
    }
    return graph;
  }
}
