import { FaultStyle, HTTP_TITLES } from '@novum/common';
import { HeatEventEntity, HeatResourceEntity, HeatSnapshotEntity, HeatStackEntity } from '@novum/db';
import { BoundTemplate, displayParameter, Json } from '@novum/hot';

const EXPLANATIONS: Record<number, string> = {
  400: 'The server could not comply with the request since it is either malformed or otherwise incorrect.',
  401: 'This server could not verify that you are authorized to access the document you requested. Either you supplied the wrong credentials (e.g., bad password), or your browser does not understand how to supply the credentials required.',
  403: 'Access was denied to this resource.',
  404: 'The resource could not be found.',
  405: 'The method specified is not allowed for this resource.',
  409: 'There was a conflict when trying to complete your request.',
  413: 'The request is larger than the server is willing or able to process.',
  415: 'The request media type is not supported by this server.',
  500: 'The server has either erred or is incapable of performing the requested operation.',
  503: 'The server is currently unavailable. Please try again at a later time.',
};

/** Heat's fault body (heat/api/middleware/fault.py): explanation, code, error {message, traceback, type}, title. */
export const heatFault: FaultStyle = ({ status, message, type }) => ({
  explanation: EXPLANATIONS[status] ?? EXPLANATIONS[500],
  code: status,
  error: { message, traceback: null, type: type ?? HTTP_TITLES[status]?.replace(/ /g, '') ?? 'Error' },
  title: HTTP_TITLES[status] ?? 'Error',
});

/** Heat's timestamps (`isotime`): ISO 8601 UTC to the second, `2026-11-28T14:20:07Z`. */
export function heatTime(iso: string | null): string | null {
  return iso ? iso.replace(/\.\d+Z$/, 'Z') : null;
}

export function stackLinks(base: string, stack: HeatStackEntity) {
  return [{ href: `${base}/stacks/${encodeURIComponent(stack.name)}/${stack.id}`, rel: 'self' }];
}

export function stackSummary(base: string, stack: HeatStackEntity) {
  return {
    id: stack.id,
    stack_name: stack.name,
    description: String((stack.template as Record<string, Json>).description ?? ''),
    creation_time: heatTime(stack.createdAt),
    updated_time: heatTime(stack.updatedAt),
    deletion_time: heatTime(stack.deletedAt),
    stack_status: `${stack.action}_${stack.status}`,
    stack_status_reason: stack.statusReason,
    stack_owner: stack.username,
    stack_user_project_id: stack.projectId,
    project: stack.projectId,
    parent: stack.ownerId ?? null,
    tags: stack.tags.length ? stack.tags : null,
    links: stackLinks(base, stack),
  };
}

export function stackDetail(
  base: string,
  stack: HeatStackEntity,
  bound: BoundTemplate | undefined,
  resolveOutputs: boolean,
) {
  const parameters: Record<string, string> = {
    'OS::project_id': stack.projectId,
    'OS::stack_id': stack.id,
    'OS::stack_name': stack.name,
  };
  if (bound) {
    for (const schema of bound.template.parameterSchemas) {
      const value = bound.values[schema.name];
      if (value !== undefined) parameters[schema.name] = displayParameter(schema, value);
    }
  }
  const detail: Record<string, unknown> = {
    ...stackSummary(base, stack),
    disable_rollback: stack.disableRollback,
    timeout_mins: stack.timeoutMins,
    capabilities: [],
    notification_topics: [],
    template_description: String((stack.template as Record<string, Json>).description ?? ''),
    parameters,
  };
  if (resolveOutputs) detail.outputs = bound ? outputsOf(bound) : [];
  return detail;
}

export function outputsOf(bound: BoundTemplate) {
  return bound.outputs().map((snippet) => {
    const result = bound.output(snippet);
    return {
      output_key: snippet.name,
      description: snippet.description ?? 'No description given',
      output_value: result.value,
      ...(result.error ? { output_error: result.error } : {}),
    };
  });
}

export function resourceView(
  base: string,
  stack: HeatStackEntity,
  row: HeatResourceEntity,
  requiredBy: string[],
  detail: boolean,
  nesting: { nestedStack?: HeatStackEntity; parentResource?: string } = {},
) {
  const stackUrl = `${base}/stacks/${encodeURIComponent(stack.name)}/${stack.id}`;
  const nested = nesting.nestedStack;
  return {
    resource_name: row.name,
    logical_resource_id: row.name,
    physical_resource_id: row.physicalId ?? '',
    resource_type: row.type,
    resource_status: `${row.action}_${row.status}`,
    resource_status_reason: row.statusReason,
    creation_time: heatTime(row.createdAt),
    updated_time: heatTime(row.updatedAt ?? row.createdAt),
    required_by: requiredBy,
    links: [
      { href: `${stackUrl}/resources/${encodeURIComponent(row.name)}`, rel: 'self' },
      { href: stackUrl, rel: 'stack' },
      ...(nested
        ? [{ href: `${base}/stacks/${encodeURIComponent(nested.name)}/${nested.id}`, rel: 'nested' }]
        : []),
    ],
    ...(nesting.parentResource !== undefined ? { parent_resource: nesting.parentResource } : {}),
    ...(detail ? { description: '', metadata: row.metadata, attributes: {} } : {}),
  };
}

export function eventView(base: string, stack: HeatStackEntity, event: HeatEventEntity) {
  const stackUrl = `${base}/stacks/${encodeURIComponent(stack.name)}/${stack.id}`;
  return {
    id: event.id,
    event_time: heatTime(event.createdAt),
    resource_name: event.resourceName,
    logical_resource_id: event.resourceName,
    physical_resource_id: event.physicalResourceId ?? '',
    resource_status: `${event.action}_${event.status}`,
    resource_status_reason: event.statusReason,
    links: [
      {
        href: `${stackUrl}/resources/${encodeURIComponent(event.resourceName)}/events/${event.id}`,
        rel: 'self',
      },
      { href: `${stackUrl}/resources/${encodeURIComponent(event.resourceName)}`, rel: 'resource' },
      { href: stackUrl, rel: 'stack' },
    ],
  };
}

/** Heat's format_snapshot. */
export function snapshotView(snapshot: HeatSnapshotEntity) {
  return {
    id: snapshot.id,
    name: snapshot.name,
    action: snapshot.action,
    status: snapshot.status,
    status_reason: snapshot.statusReason,
    data: snapshot.data,
    creation_time: heatTime(snapshot.createdAt),
  };
}
