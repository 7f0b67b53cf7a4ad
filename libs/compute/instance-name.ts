/**
 * Nova's instance name (`instance_name_template` `instance-%08x`), which the hypervisors API and the admin
 * server view show: here the first eight hex digits of the uuid, for Novum has no integer instance ids.
 */
export function instanceName(uuid: string): string {
  return `instance-${uuid.replace(/-/g, '').slice(0, 8)}`;
}
