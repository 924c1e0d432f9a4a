import { type Compilable, CompiledQuery, type QueryResult } from 'kysely';
import type { Db } from './db.js';
import { isPostgres } from './postgres.js';

/** Marks a parameter's place while the query is compiled; no caller's value starts with it. */
const MARK = '\u0000runkeys-parameter:';

type Slot = { name: string } | { value: unknown };

interface Compiled {
  sql: string;
  slots: Slot[];
}

/**
 * A query built with Kysely's typed builder once per dialect and then run again and again with
 * new parameters, for the statements every attach runs. Building and compiling a query costs
 * more than SQLite takes to run these, and it was about a seventh of an attach's CPU
 * (bench/attach.ts).
 *
 * `build` receives stand-ins for its named parameters; each must go into the query as a bound
 * value, as it is, once or more (no arithmetic or branching on it). Compiling checks that every
 * parameter read became a bound value and that none reached the SQL text, and throws otherwise.
 */
export function prepared<P extends Record<string, unknown>, O>(
  build: (db: Db, params: P) => Compilable<O>,
): (db: Db, params: P) => Promise<QueryResult<O>> {
  const byDialect = new Map<boolean, Compiled>();
  return async (db, params) => {
    const postgres = isPostgres(db);
    let compiled = byDialect.get(postgres);
    if (compiled === undefined) {
      compiled = compile(db, build);
      byDialect.set(postgres, compiled);
    }
    const values = compiled.slots.map((s) => ('name' in s ? params[s.name] : s.value));
    return db.executeQuery<O>(CompiledQuery.raw(compiled.sql, values));
  };
}

function compile<P extends Record<string, unknown>, O>(
  db: Db,
  build: (db: Db, params: P) => Compilable<O>,
): Compiled {
  const read = new Set<string>();
  const standIns = new Proxy(
    {},
    {
      get: (_target, key) => {
        read.add(String(key));
        return `${MARK}${String(key)}`;
      },
    },
  ) as P;
  const query = build(db, standIns).compile();
  if (query.sql.includes(MARK)) throw new Error('a prepared query put a parameter in its SQL');
  const slots: Slot[] = query.parameters.map((v) =>
    typeof v === 'string' && v.startsWith(MARK) ? { name: v.slice(MARK.length) } : { value: v },
  );
  const bound = new Set(slots.flatMap((s) => ('name' in s ? [s.name] : [])));
  for (const name of read) {
    if (!bound.has(name)) throw new Error(`prepared query parameter ${name} is not a bound value`);
  }
  return { sql: query.sql, slots };
}
