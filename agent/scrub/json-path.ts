/** Dotted JSON paths (`event.delta.text`, `items.0.text`) and the conditions rules use. */

export type Scalar = string | number | boolean | null;

export interface Condition {
  readonly path: string;
  readonly oneOf?: readonly Scalar[];
  readonly notOneOf?: readonly Scalar[];
  /** The value is a string ending with this. */
  readonly suffix?: string;
  /** The path is present (true) or absent (false). */
  readonly exists?: boolean;
}

export function valueAt(root: unknown, path: string): unknown {
  let node = root;
  for (const step of path.split('.')) {
    if (node === null || typeof node !== 'object') return undefined;

    node = (node as Record<string, unknown>)[step];
  }
  return node;
}

export function holds(root: unknown, cond: Condition): boolean {
  const v = valueAt(root, cond.path);
  if (cond.exists !== undefined && (v !== undefined) !== cond.exists) return false;

  if (cond.oneOf !== undefined && !cond.oneOf.includes(v as Scalar)) return false;

  if (cond.notOneOf !== undefined && (v === undefined || cond.notOneOf.includes(v as Scalar))) {
    return false;
  }
  return cond.suffix === undefined || (typeof v === 'string' && v.endsWith(cond.suffix));
}

export function allHold(root: unknown, conds: readonly Condition[]): boolean {
  return conds.every((c) => holds(root, c));
}

/** Whether a token path (keys and array indices) is the dotted `path`. */
export function isPath(tokens: readonly (string | number)[], path: string): boolean {
  const steps = path.split('.');
  return steps.length === tokens.length && steps.every((s, i) => s === String(tokens[i]));
}
