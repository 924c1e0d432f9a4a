import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { type ServiceError, status } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import fc from 'fast-check';
import { REPO_ROOT } from './cli.js';
import { bearer, type Rpc } from './rpc.js';

/**
 * Schema-driven fuzzing of the runkeys.v1 requests: the field list of every message is read
 * from the .proto files (through @grpc/proto-loader's descriptors), so a field or method added
 * to a .proto is fuzzed without a change here. Values are built in the shape ts-proto's
 * fromPartial takes (camelCase names, Date for Timestamp, Buffer for bytes, objects for maps).
 */

export type FieldKind =
  | { kind: 'string' }
  | { kind: 'int32' }
  | { kind: 'int64' }
  | { kind: 'bool' }
  | { kind: 'bytes' }
  | { kind: 'enum'; values: number[] }
  | { kind: 'timestamp' }
  | { kind: 'message'; type: string }
  | { kind: 'map'; value: FieldKind };

export interface Field {
  /** camelCase, as ts-proto names it. */
  name: string;
  number: number;
  repeated: boolean;
  type: FieldKind;
}

export interface Schema {
  /** Fully qualified message name to its fields. */
  messages: Map<string, Field[]>;
  /** Method path (/runkeys.v1.Service/Method) to its request message's full name. */
  requests: Map<string, string>;
}

interface FieldDescriptor {
  name: string;
  number: number;
  label: string;
  type: string;
  typeName: string;
}

interface MessageDescriptor {
  name: string;
  field: FieldDescriptor[];
  nestedType: MessageDescriptor[];
  options: { mapEntry?: boolean } | null;
}

interface EnumDescriptor {
  value: { name: string; number: number }[];
}

interface MethodDefinition {
  path: string;
  requestType: { type: MessageDescriptor };
}

const PACKAGE = 'runkeys.v1';
const TIMESTAMP = 'google.protobuf.Timestamp';

/** Reads every .proto of runkeys.v1; throws on a field type the fuzzer does not know yet. */
export function loadSchema(): Schema {
  const root = join(REPO_ROOT, 'proto');
  const files = readdirSync(join(root, 'runkeys', 'v1'))
    .filter((f) => f.endsWith('.proto'))
    .map((f) => `runkeys/v1/${f}`);
  const def = loadSync(files, { includeDirs: [root] }) as Record<string, unknown>;
  const messages = new Map<string, Field[]>();
  const requests = new Map<string, string>();
  const enums = new Map<string, number[]>();
  const descriptors = new Map<string, MessageDescriptor>();

  for (const [name, value] of Object.entries(def)) {
    const v = value as { type?: MessageDescriptor | EnumDescriptor };
    if (v.type !== undefined && 'value' in v.type) {
      enums.set(
        name,
        v.type.value.map((e) => e.number),
      );
    } else if (v.type !== undefined && 'field' in v.type) {
      descriptors.set(name, v.type);
    } else if (name.startsWith(`${PACKAGE}.`)) {
      for (const method of Object.values(value as Record<string, MethodDefinition>)) {
        requests.set(method.path, `${PACKAGE}.${method.requestType.type.name}`);
      }
    }
  }

  const resolve = (typeName: string): string => {
    if (descriptors.has(typeName) || enums.has(typeName)) return typeName;
    const qualified = `${PACKAGE}.${typeName}`;
    if (descriptors.has(qualified) || enums.has(qualified)) return qualified;
    throw new Error(`fuzz schema: cannot resolve type ${typeName}`);
  };

  const kindOf = (f: FieldDescriptor, owner: MessageDescriptor): FieldKind => {
    switch (f.type) {
      case 'TYPE_STRING':
        return { kind: 'string' };
      case 'TYPE_INT32':
        return { kind: 'int32' };
      case 'TYPE_INT64':
        return { kind: 'int64' };
      case 'TYPE_BOOL':
        return { kind: 'bool' };
      case 'TYPE_BYTES':
        return { kind: 'bytes' };
      case 'TYPE_ENUM':
        return { kind: 'enum', values: enums.get(resolve(f.typeName)) ?? [0] };
      case 'TYPE_MESSAGE': {
        const entry = owner.nestedType.find((n) => n.name === f.typeName && n.options?.mapEntry);
        if (entry !== undefined) {
          const value = entry.field.find((x) => x.number === 2);
          if (value === undefined) throw new Error(`fuzz schema: map ${f.name} has no value`);
          return { kind: 'map', value: kindOf(value, entry) };
        }
        const type = resolve(f.typeName);
        return type === TIMESTAMP ? { kind: 'timestamp' } : { kind: 'message', type };
      }
      default:
        throw new Error(
          `fuzz schema: field ${owner.name}.${f.name} has type ${f.type}, which ` +
            'test/helpers/fuzz.ts does not generate yet',
        );
    }
  };

  for (const [name, d] of descriptors) {
    if (!name.startsWith(`${PACKAGE}.`)) continue;
    messages.set(
      name,
      d.field.map((f) => {
        const type = kindOf(f, d);
        return {
          name: f.name,
          number: f.number,
          // A map is a repeated entry message on the wire; here it is one object.
          repeated: f.label === 'LABEL_REPEATED' && type.kind !== 'map',
          type,
        };
      }),
    );
  }
  return { messages, requests };
}

export function fieldsOf(schema: Schema, type: string): Field[] {
  const fields = schema.messages.get(type);
  if (fields === undefined) throw new Error(`fuzz schema: no message ${type}`);
  return fields;
}

// ---------------------------------------------------------------------------------------------
// Values

/** Strings that sit on or near the edges of the server's rules. */
export const EDGE_STRINGS = [
  '',
  ' ',
  '\0',
  'a\0b',
  '\n',
  'acme',
  'alpha',
  'github',
  'octocat',
  'anthropic',
  'bedrock',
  'vllm',
  'openai',
  'PLAIN_URL',
  'SECRET_ACME',
  'PATH',
  'LD_PRELOAD',
  'RUNKEYS_TOKEN',
  'DYLD_X',
  'a'.repeat(63),
  'a'.repeat(64),
  'A'.repeat(257),
  '-leading-dash',
  'UPPER',
  'https://auth.example/oauth/token',
  'http://127.0.0.1:9/token',
  'http://example.com/token',
  'https://user:pass@auth.example/token',
  'ftp://x.example',
  'not a url',
  'https://',
  'us-east-1',
  'x-y-99',
  '~/x.json',
  '~/',
  '../etc/passwd',
  '/etc/passwd',
  'a/./b',
  '{"t":"{{access_token}}"}',
  '{"t":"{{access_token}}","r":"{{field:refresh_token}}"}',
  '{"t":"{{access_token}}","x":"{{id_token}}"}',
  '{{access_token}}',
  'access_token',
  'refresh_token',
  'client_secret_basic',
  'client_secret_post',
  'none',
  'seconds',
  'milliseconds',
  'rfc3339',
  'api_key',
  'account',
  'repo',
  'repo "quoted"',
  'env_var.',
  'env_var.update',
  'run_0123456789abcdef',
  'run_0123456789ABCDEF',
  'cf_00000000000000000000',
  'tok_0123456789abcdef',
  'eyJzIjoiY29sbGVjdGlvbnMiLCJhIjoienoifQ',
  '\u202e\u0645\u0631\u062d\u0628\u0627',
  '\ud83d\udd11\u200d\ufe0f',
  '\ud800',
  'e\u0301',
] as const;

/** A string of `length` characters made of a repeated chunk: long, and cheap to make. */
const repeatedTo = (chunk: string, length: number): string =>
  chunk.repeat(Math.ceil(length / chunk.length)).slice(0, length);

export function fuzzString(): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
    { weight: 3, arbitrary: fc.constantFrom(...EDGE_STRINGS) },
    { weight: 2, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 17, maxLength: 80 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.string({ unit: 'binary', minLength: 1, maxLength: 8 }), fc.nat(100 * 1024))
        .map(([chunk, length]) => repeatedTo(chunk, length)),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.string({ maxLength: 10 }), fc.string({ maxLength: 10 }))
        .map(([a, b]) => `${a}\0${b}`),
    },
  );
}

const INT32_EDGES = [0, 1, -1, 1000, 1001, 2 ** 31 - 1, -(2 ** 31)];
const INT64_EDGES = [
  0,
  1,
  -1,
  3600,
  86_400,
  86_401,
  315_360_000,
  315_360_001,
  Number.MAX_SAFE_INTEGER,
  Number.MIN_SAFE_INTEGER,
];

export const int32Arb = fc.oneof(
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
  fc.constantFrom(...INT32_EDGES),
);
/** int64 values JavaScript holds exactly (what ts-proto with forceLong=number can encode). */
export const int64Arb = fc.oneof(fc.maxSafeInteger(), fc.constantFrom(...INT64_EDGES));
export const bytesArb = (maxLength = 64, minLength = 0) =>
  fc
    .uint8Array({ minLength, maxLength })
    .map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength));
export const enumArb = (values: number[]) =>
  fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...values) },
    { weight: 1, arbitrary: fc.integer({ min: -3, max: 1000 }) },
    { weight: 1, arbitrary: fc.constantFrom(2 ** 31 - 1, -(2 ** 31)) },
  );
export const dateArb = fc.oneof(
  fc.date({ noInvalidDate: true }),
  fc.constantFrom(new Date(0), new Date(8.64e15), new Date(-8.64e15), new Date()),
);

const MAX_DEPTH = 3;

export function valueArb(schema: Schema, type: FieldKind, depth: number): fc.Arbitrary<unknown> {
  switch (type.kind) {
    case 'string':
      return fuzzString();
    case 'int32':
      return int32Arb;
    case 'int64':
      return int64Arb;
    case 'bool':
      return fc.boolean();
    case 'bytes':
      return bytesArb();
    case 'enum':
      return enumArb(type.values);
    case 'timestamp':
      return dateArb;
    case 'map':
      return fc.oneof(
        { weight: 4, arbitrary: fc.dictionary(fuzzString(), valueArb(schema, type.value, depth)) },
        {
          weight: 1,
          arbitrary: fc.dictionary(fc.string({ minLength: 1, maxLength: 12 }), fc.string(), {
            minKeys: 33,
            maxKeys: 40,
          }),
        },
      );
    case 'message':
      return depth >= MAX_DEPTH ? fc.constant({}) : messageArb(schema, type.type, depth + 1);
  }
}

/**
 * Page tokens are base64url JSON of the list they belong to and the last key returned, which
 * any client reads off a next_page_token: forged ones name a real list (`scopes`, as read off
 * the server's own tokens) and a random key.
 */
export function pageTokenArb(scopes: readonly string[]): fc.Arbitrary<string> {
  const scope = scopes.length === 0 ? fuzzString() : fc.constantFrom(...scopes);
  return fc.oneof(
    fuzzString(),
    fc
      .record({
        s: fc.oneof({ weight: 4, arbitrary: scope }, { weight: 1, arbitrary: fuzzString() }),
        a: fc.oneof(
          fuzzString(),
          fc.stringMatching(/^-?[0-9]{1,25}(\.[0-9])?$/),
          fc.constantFrom('zz', '0', 'acme', 'tok_0', 'run_0'),
        ),
      })
      .map((body) => Buffer.from(JSON.stringify(body), 'utf8').toString('base64url')),
  );
}

/** Arbitraries for fields (by name) whose values have a shape beyond their proto type. */
export type Shaped = Readonly<Record<string, fc.Arbitrary<unknown>>>;

function fieldArb(
  schema: Schema,
  f: Field,
  depth: number,
  shaped: Shaped = {},
): fc.Arbitrary<unknown> {
  const special = shaped[f.name];
  if (special !== undefined && !f.repeated) return special;
  const one = valueArb(schema, f.type, depth);
  if (!f.repeated) return one;
  // Small lists mostly; now and then one past the limits (100 scopes, 32 injections).
  const many =
    f.type.kind === 'message'
      ? fc.array(fc.constant({}), { minLength: 33, maxLength: 40 })
      : fc.array(f.type.kind === 'string' ? fc.constantFrom('repo', 'x', '') : one, {
          minLength: 33,
          maxLength: 120,
        });
  return fc.oneof(
    { weight: 5, arbitrary: fc.array(one, { maxLength: 3 }) },
    { weight: 1, arbitrary: many },
  );
}

/** A random message of `type`: every field random or missing. */
export function messageArb(
  schema: Schema,
  type: string,
  depth = 0,
): fc.Arbitrary<Record<string, unknown>> {
  const fields = fieldsOf(schema, type);
  const model = Object.fromEntries(fields.map((f) => [f.name, fieldArb(schema, f, depth)]));
  return fc.record(model, { requiredKeys: [] }) as fc.Arbitrary<Record<string, unknown>>;
}

const KEEP = Symbol('keep');
const DROP = Symbol('drop');

/**
 * A valid request with some fields changed: each field is kept, dropped (its proto3 default),
 * replaced with a random value, or (a message present in the base) mutated in turn.
 */
export function mutateArb(
  schema: Schema,
  type: string,
  base: Record<string, unknown>,
  shaped: Shaped = {},
  depth = 0,
): fc.Arbitrary<Record<string, unknown>> {
  const fields = fieldsOf(schema, type);
  const model = Object.fromEntries(
    fields.map((f) => {
      const options: fc.WeightedArbitrary<unknown>[] = [
        { weight: 4, arbitrary: fc.constant(KEEP) },
        { weight: 1, arbitrary: fc.constant(DROP) },
        { weight: 2, arbitrary: fieldArb(schema, f, depth, shaped) },
      ];
      const nested = base[f.name];
      if (
        f.type.kind === 'message' &&
        !f.repeated &&
        typeof nested === 'object' &&
        nested !== null &&
        depth < MAX_DEPTH
      ) {
        options.push({
          weight: 3,
          arbitrary: mutateArb(
            schema,
            f.type.type,
            nested as Record<string, unknown>,
            shaped,
            depth + 1,
          ),
        });
      }
      return [f.name, fc.oneof(...options)];
    }),
  );
  return fc.record(model).map((changes) => {
    const out: Record<string, unknown> = { ...base };
    for (const [name, change] of Object.entries(changes)) {
      if (change === KEEP) continue;
      if (change === DROP) delete out[name];
      else out[name] = change;
    }
    return out;
  });
}

// ---------------------------------------------------------------------------------------------
// Secrets in requests, and their echo in answers

/** Fields whose values are credentials: no answer may repeat them. */
export const SECRET_FIELDS = new Set([
  'value',
  'apiKey',
  'accessKeyId',
  'secretAccessKey',
  'sessionToken',
  'bearerToken',
  'clientSecret',
  'accessToken',
  'refreshToken',
]);

/**
 * Under these message fields every string is a secret (the token set of an account), but for
 * the fields named here, which are names and may be echoed in errors.
 */
const SECRET_MESSAGES: Record<string, ReadonlySet<string>> = {
  tokens: new Set(['scope']),
};

export interface RequestStrings {
  secret: string[];
  plain: string[];
}

/** Every string a request carries, split into secrets and the rest (names, URLs...). */
export function requestStrings(
  schema: Schema,
  type: string,
  message: Record<string, unknown>,
  out: RequestStrings = { secret: [], plain: [] },
  underSecret?: ReadonlySet<string>,
): RequestStrings {
  for (const f of fieldsOf(schema, type)) {
    const value = message[f.name];
    if (value === undefined || value === null) continue;
    const secret =
      SECRET_FIELDS.has(f.name) || (underSecret !== undefined && !underSecret.has(f.name));
    const values = f.repeated && Array.isArray(value) ? value : [value];
    for (const v of values) {
      if (f.type.kind === 'string' && typeof v === 'string') {
        (secret ? out.secret : out.plain).push(v);
      } else if (f.type.kind === 'map' && typeof v === 'object') {
        for (const [k, mv] of Object.entries(v as Record<string, unknown>)) {
          out.plain.push(k);
          if (typeof mv === 'string') (secret ? out.secret : out.plain).push(mv);
        }
      } else if (f.type.kind === 'message' && typeof v === 'object') {
        const inner = SECRET_MESSAGES[f.name] ?? (secret ? new Set<string>() : underSecret);
        requestStrings(schema, f.type.type, v as Record<string, unknown>, out, inner);
      }
    }
  }
  return out;
}

/** Shortest secret the echo check looks for: shorter ones match too much by chance. */
export const MIN_ECHO = 17;

/**
 * Whether `text` repeats `secret`, whole or cut short (errors quote at most 64 characters of a
 * name), raw or JSON-escaped. Secrets that also appear among the plain strings are skipped.
 */
export function echoes(text: string, secret: string): boolean {
  if (secret.length < MIN_ECHO) return false;
  const forms = [secret, JSON.stringify(secret).slice(1, -1)];
  return forms.some((s) => {
    const head = s.slice(0, 24);
    const tail = s.slice(-24);
    return text.includes(head) || text.includes(tail);
  });
}

/** The secrets of a request that a message must not carry. */
export function echoedSecrets(text: string, strings: RequestStrings): string[] {
  return strings.secret.filter(
    (s) => echoes(text, s) && !strings.plain.some((p) => p.includes(s.slice(0, 24))),
  );
}

// ---------------------------------------------------------------------------------------------
// The wire

export interface Outcome {
  code: number;
  details: string;
  ms: number;
}

/** Sends already encoded request bytes to a unary method; resolves every outcome. */
export function sendBytes(
  rpc: Rpc,
  path: string,
  bytes: Uint8Array,
  token: string | undefined,
  deadlineMs: number,
): Promise<Outcome> {
  const started = Date.now();
  return new Promise((resolve) => {
    rpc.client.makeUnaryRequest(
      path,
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.from(bytes),
      bearer(token),
      { deadline: started + deadlineMs },
      (err: ServiceError | null) => {
        resolve({
          code: err === null ? status.OK : err.code,
          details: err === null ? '' : err.details,
          ms: Date.now() - started,
        });
      },
    );
  });
}

/**
 * Extra fields appended to an encoded message, which protobuf parsers merge into it: a later
 * scalar replaces the earlier one, so these reach values ts-proto would never encode.
 */
export type WireExtra =
  /** A field number the message does not have. */
  | { kind: 'unknown'; number: number; bytes: Uint8Array }
  /** A known field sent with the wrong wire type. */
  | { kind: 'wrong-type'; number: number; value: number }
  /** A string field whose bytes are not UTF-8. */
  | { kind: 'bad-utf8'; number: number; bytes: Uint8Array }
  /** An int32 or enum field sent as a 64-bit varint. */
  | { kind: 'wide-varint'; number: number; value: bigint }
  /** An int64 field past what a JavaScript number holds exactly. */
  | { kind: 'int64'; number: number; value: bigint }
  /** A Timestamp field with seconds past the range of a Date. */
  | { kind: 'timestamp'; number: number; seconds: bigint; nanos: number };

export function encodeExtras(extras: readonly WireExtra[]): Uint8Array {
  const w = new BinaryWriter();
  for (const e of extras) {
    switch (e.kind) {
      case 'unknown':
        w.tag(e.number, WireType.LengthDelimited).bytes(e.bytes);
        break;
      case 'wrong-type':
        w.tag(e.number, WireType.Bit32).fixed32(e.value);
        break;
      case 'bad-utf8':
        w.tag(e.number, WireType.LengthDelimited).bytes(e.bytes);
        break;
      case 'wide-varint':
      case 'int64':
        w.tag(e.number, WireType.Varint).int64(e.value);
        break;
      case 'timestamp': {
        const ts = new BinaryWriter()
          .tag(1, WireType.Varint)
          .int64(e.seconds)
          .tag(2, WireType.Varint)
          .int32(e.nanos)
          .finish();
        w.tag(e.number, WireType.LengthDelimited).bytes(ts);
        break;
      }
    }
  }
  return w.finish();
}

/** Bytes that are not valid UTF-8 (a lone continuation byte, an overlong form, 0xff). */
const badUtf8 = fc.constantFrom(
  Uint8Array.of(0x80),
  Uint8Array.of(0xc0, 0xaf),
  Uint8Array.of(0x61, 0xff, 0x62),
  Uint8Array.of(0xed, 0xa0, 0x80),
);

/**
 * Wire extras that a correct server must take like any other bad input: unknown fields, wrong
 * wire types, non-UTF-8 strings and over-wide varints for the top-level fields of `type`.
 */
export function benignExtrasArb(schema: Schema, type: string): fc.Arbitrary<WireExtra[]> {
  const fields = fieldsOf(schema, type);
  const strings = fields.filter((f) => f.type.kind === 'string').map((f) => f.number);
  const narrow = fields
    .filter((f) => f.type.kind === 'int32' || f.type.kind === 'enum')
    .map((f) => f.number);
  const all = fields.map((f) => f.number);
  const options: fc.Arbitrary<WireExtra>[] = [
    fc
      .record({ number: fc.integer({ min: 100, max: 536_870_911 }), bytes: bytesArb(16) })
      .map((r): WireExtra => ({ kind: 'unknown', ...r })),
  ];
  if (all.length > 0) {
    options.push(
      fc
        .record({ number: fc.constantFrom(...all), value: fc.nat() })
        .map((r): WireExtra => ({ kind: 'wrong-type', ...r })),
    );
  }
  if (strings.length > 0) {
    options.push(
      fc
        .record({ number: fc.constantFrom(...strings), bytes: badUtf8 })
        .map((r): WireExtra => ({ kind: 'bad-utf8', ...r })),
    );
  }
  if (narrow.length > 0) {
    options.push(
      fc
        .record({
          number: fc.constantFrom(...narrow),
          value: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
        })
        .map((r): WireExtra => ({ kind: 'wide-varint', ...r })),
    );
  }
  return fc.oneof(
    { weight: 3, arbitrary: fc.constant<WireExtra[]>([]) },
    { weight: 1, arbitrary: fc.array(fc.oneof(...options), { minLength: 1, maxLength: 3 }) },
  );
}

/** The top-level int64 and Timestamp fields of `type`, which the wire can fill out of range. */
export function wideFields(schema: Schema, type: string): { int64: number[]; timestamp: number[] } {
  const fields = fieldsOf(schema, type);
  return {
    int64: fields.filter((f) => f.type.kind === 'int64').map((f) => f.number),
    timestamp: fields.filter((f) => f.type.kind === 'timestamp').map((f) => f.number),
  };
}

/** fast-check settings shared by the fuzz files: FUZZ_SEED replays, FUZZ_RUNS scales. */
export function fuzzParameters(numRuns: number): fc.Parameters<unknown> {
  const seed = process.env.FUZZ_SEED;
  const scale = Number(process.env.FUZZ_RUNS_SCALE ?? '1');
  return {
    numRuns: Math.max(1, Math.round(numRuns * (Number.isFinite(scale) ? scale : 1))),
    ...(seed === undefined ? {} : { seed: Number(seed) }),
    // Shrinking re-sends requests; FUZZ_NO_SHRINK=1 reports the first failure as found.
    endOnFailure: process.env.FUZZ_NO_SHRINK !== undefined,
  };
}
