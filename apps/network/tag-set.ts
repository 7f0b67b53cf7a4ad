/** A resource's tags as Neutron keeps them: a set, in the order first given. */
export function uniqueTags(tags: string[] | undefined): string[] {
  return [...new Set(tags ?? [])];
}
