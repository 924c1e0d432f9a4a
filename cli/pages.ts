/** Follows page tokens until the server says there are no more. */
export async function allPages<T>(
  fetch: (pageToken: string) => Promise<{ items: T[]; next: string }>,
): Promise<T[]> {
  const out: T[] = [];
  let token = '';
  do {
    const page = await fetch(token);
    out.push(...page.items);
    token = page.next;
  } while (token !== '');
  return out;
}
