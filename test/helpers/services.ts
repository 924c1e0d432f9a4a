import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from './cli.js';
import { requestMessage, type UnaryMethod } from './rpc.js';

/** A method of a generated grpc-js service definition. */
export interface GeneratedMethod extends UnaryMethod<unknown, unknown> {
  /** The key in the definition object, e.g. createEnvVar. */
  key: string;
  requestStream: boolean;
  responseStream: boolean;
  /** Builds a full request from a partial one. */
  build(partial: object): unknown;
}

export interface GeneratedService {
  /** Fully qualified, e.g. runkeys.v1.EnvVarService. */
  name: string;
  methods: GeneratedMethod[];
}

const isMethod = (v: unknown): v is Omit<GeneratedMethod, 'key' | 'build'> =>
  typeof v === 'object' &&
  v !== null &&
  typeof (v as { path?: unknown }).path === 'string' &&
  typeof (v as { requestSerialize?: unknown }).requestSerialize === 'function';

/**
 * Every service the generated stubs in proto/gen/runkeys/v1 define, found by reading the
 * directory, so that a service or method added to a .proto shows up here without a code change.
 */
export async function generatedServices(): Promise<GeneratedService[]> {
  const dir = join(REPO_ROOT, 'proto', 'gen', 'runkeys', 'v1');
  const out: GeneratedService[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
    const mod = (await import(pathToFileURL(join(dir, file)).href)) as Record<string, unknown>;
    for (const value of Object.values(mod)) {
      if (typeof value !== 'object' || value === null) continue;
      const entries = Object.entries(value);
      if (entries.length === 0 || !entries.every(([, m]) => isMethod(m))) continue;
      const methods = entries.map(([key, m]) => {
        const method = m as Omit<GeneratedMethod, 'key' | 'build'>;
        const message = requestMessage(method.path, mod);
        return {
          ...method,
          key,
          build: (partial: object) =>
            message === undefined ? partial : message.fromPartial(partial),
        };
      });
      const first = methods[0]!.path;
      out.push({ name: first.slice(1, first.lastIndexOf('/')), methods });
    }
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}
