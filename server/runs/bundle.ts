import { createHash } from 'node:crypto';
import {
  type AccountState,
  type Bundle,
  type BundleEntry,
  type BundleFile,
  type Conflict,
  Layer,
} from '../../proto/gen/runkeys/v1/runs.js';
import { type CollectionKeys, fingerprintValue, openValue } from '../crypto/keyring.js';
import { inheritedUnset, PROVIDER_FORBIDDEN, providerEntries } from '../layers/provider-env.js';
import type { Credential, ProviderName } from '../layers/providers.js';
import { fillTemplate } from '../oauth/template.js';
import type { StoredTokens } from '../oauth/tokens.js';
import { accountTokensContext } from '../services/accounts.js';
import type { ServiceDeps } from '../services/deps.js';
import { envVarContext } from '../services/env-vars.js';
import { providerKeyContext } from '../services/provider-keys.js';
import { getCollection } from '../store/collections.js';
import type { Db } from '../store/db.js';
import { listEnvVars } from '../store/env-vars.js';
import { getOAuthClient, listAllAccounts } from '../store/oauth.js';
import { getProviderKey } from '../store/provider-keys.js';
import { insertBundleContents } from '../store/reports.js';
import type { CollectionRow, RunTable } from '../store/schema.js';
import type { ClientConfig } from '../validate/oauth.js';

/**
 * Precedence when two layers give the same name: the runtime's provider credential wins over
 * connected accounts, which win over environment variables. The losing value is left out and
 * the conflict is carried in the bundle (the agent logs it by name).
 */
const PRECEDENCE: Layer[] = [Layer.LAYER_PROVIDER, Layer.LAYER_ACCOUNT, Layer.LAYER_ENV];

/**
 * Assembles what one run receives. The version is read before the values, without a
 * transaction: a change that lands in between makes the values newer than the version they
 * carry, and the change's own version bump then sends them again, so an agent never keeps a
 * value older than its version says.
 * 1. the collection's version;
 * 2. its environment variables;
 * 3. the runtime's provider credential, mapped to the names its SDKs read, and nothing of any
 *    other provider; a runtime that authenticates through an account gets no key;
 * 4. connected accounts (see accountLayer);
 * 5. precedence between layers, names no layer may give, and names to remove from the
 *    inherited environment;
 * 6. what it carries, recorded under its digest for receipts (recordContents), and the
 *    collection's outage limit.
 */
export async function assembleBundle(
  deps: ServiceDeps,
  run: RunTable,
  cache?: BundleCache,
  /** The collection's row when the caller just read it (the watcher does, for every stream). */
  known?: CollectionRow,
): Promise<Bundle> {
  const { db } = deps;
  // 1.
  const collection = known ?? (await getCollection(db, run.collection));
  if (collection === undefined) throw new Error(`collection of run ${run.id} is gone`);
  const version = Number(collection.version);
  // The data key's sealed form is new with every collection, so a collection deleted and made
  // again under the same name never meets the old one's entries.
  const runtime = `${run.provider}\0${run.auth}\0${run.account}`;
  const cacheKey = `${collection.name}\0${runtime}\0${collection.data_key_sealed}`;
  const cached = cache?.get(cacheKey, version);
  if (cached !== undefined) return { ...(await cached), resumeCredential: '' };
  const building = build(deps, run, collection, version);
  cache?.set(cacheKey, version, building);
  try {
    return { ...(await building) };
  } catch (err) {
    cache?.drop(cacheKey, building);
    throw err;
  }
}

/** Steps 2 to 6 of assembleBundle, for one collection version. */
async function build(
  deps: ServiceDeps,
  run: RunTable,
  collection: CollectionRow,
  version: number,
): Promise<Bundle> {
  const { db } = deps;
  const keys = deps.keyring.openDataKey(collection.name, collection.data_key_sealed);
  const candidates: BundleEntry[] = [];
  // 2.
  for (const row of await allEnvVars(db, run.collection)) {
    candidates.push({
      name: row.name,
      value: openValue(keys, envVarContext(row.collection, row.name), row.value_sealed),
      layer: Layer.LAYER_ENV,
      sensitive: row.sensitive === 1,
      expireTime: undefined,
      fingerprint: row.fingerprint,
    });
  }
  // 3.
  const provider = run.provider as ProviderName;
  const key =
    run.auth === 'api_key' ? await getProviderKey(db, run.collection, provider) : undefined;
  let credential: Credential = {};
  if (key !== undefined) {
    credential = JSON.parse(
      openValue(keys, providerKeyContext(run.collection, provider), key.credential_sealed),
    ) as Credential;
    for (const e of providerEntries(provider, credential)) {
      candidates.push({
        ...e,
        layer: Layer.LAYER_PROVIDER,
        expireTime: undefined,
        fingerprint: fingerprintValue(keys, e.value),
      });
    }
  }
  // 4.
  const { files, accounts } = await accountLayer(db, keys, run, candidates);
  // 5.
  const { entries, conflicts } = resolve(candidates, PROVIDER_FORBIDDEN[provider]);
  const unset = inheritedUnset(provider, credential);
  // 6.
  const digest = await recordContents(db, collection.name, version, entries, files, deps.now());
  return {
    version,
    entries,
    files,
    unset,
    conflicts,
    resumeCredential: '',
    accounts,
    maxOfflineSeconds: Number(collection.max_offline_s),
    digest,
  };
}

/**
 * What a bundle carries, without its values: each entry's name, layer and value fingerprint,
 * and each credential file's path with the fingerprints of the secrets in it, sorted. Its
 * digest names it; agents quote the digest in their receipts, so "which runs received this
 * value" is a lookup of the digests whose contents hold it. Recorded once per digest.
 */
export type BundleContents = [name: string, layer: string, fingerprint: string][];

async function recordContents(
  db: Db,
  collection: string,
  version: number,
  entries: readonly BundleEntry[],
  files: readonly BundleFile[],
  now: number,
): Promise<string> {
  const contents: BundleContents = entries.map((e) => [
    e.name,
    LAYER_NAMES[e.layer],
    e.fingerprint,
  ]);
  for (const f of files) {
    for (const fp of f.secretFingerprints) contents.push([f.path, 'file', fp]);
  }
  contents.sort((a, b) => (a.join('\0') < b.join('\0') ? -1 : 1));
  const text = JSON.stringify(contents);
  const digest = `b_${createHash('sha256').update(text).digest('hex').slice(0, 32)}`;
  await insertBundleContents(db, { collection, digest, version, contents: text, created_at: now });
  return digest;
}

export const LAYER_NAMES: Record<Layer, string> = {
  [Layer.LAYER_UNSPECIFIED]: '',
  [Layer.LAYER_PROVIDER]: 'provider',
  [Layer.LAYER_ENV]: 'env',
  [Layer.LAYER_ACCOUNT]: 'account',
  [Layer.UNRECOGNIZED]: '',
};

const BUNDLE_CACHE_SIZE = 256;

/**
 * Bundles already assembled (or being assembled), by collection, runtime and version: every run
 * of a collection on one runtime receives the same entries at one version, so an attach, or a
 * change fanned out to many streams, opens and maps the values once. A change wakes every
 * attached stream of the collection at once; they all wait for the one assembly in flight
 * rather than each making its own. Entries of older versions are dropped as newer ones arrive;
 * the cache holds no more than the control plane opens anyway.
 */
export class BundleCache {
  private readonly entries = new Map<string, { version: number; bundle: Promise<Bundle> }>();

  get(key: string, version: number): Promise<Bundle> | undefined {
    const hit = this.entries.get(key);
    return hit !== undefined && hit.version === version ? hit.bundle : undefined;
  }

  set(key: string, version: number, bundle: Promise<Bundle>): void {
    const current = this.entries.get(key);
    if (current !== undefined && current.version > version) return;
    this.entries.delete(key);
    if (this.entries.size >= BUNDLE_CACHE_SIZE) {
      this.entries.delete(this.entries.keys().next().value as string);
    }
    this.entries.set(key, { version, bundle });
  }

  /** Forgets an assembly that failed, so the next caller tries again. */
  drop(key: string, bundle: Promise<Bundle>): void {
    if (this.entries.get(key)?.bundle === bundle) this.entries.delete(key);
  }
}

async function allEnvVars(db: Db, collection: string) {
  // Collections hold at most 1,000 variables (MAX_ENV_VARS): one page holds them all.
  return listEnvVars(db, collection, '', 1000);
}

function resolve(candidates: BundleEntry[], forbidden: readonly string[]) {
  const rank = (l: Layer) => PRECEDENCE.indexOf(l);
  const byName = new Map<string, BundleEntry>();
  const conflicts: Conflict[] = [];
  const sorted = [...candidates].sort((a, b) => rank(a.layer) - rank(b.layer));
  for (const entry of sorted) {
    if (forbidden.includes(entry.name)) {
      conflicts.push({ name: entry.name, winner: Layer.LAYER_UNSPECIFIED, loser: entry.layer });
      continue;
    }
    const winner = byName.get(entry.name);
    if (winner === undefined) byName.set(entry.name, entry);
    else conflicts.push({ name: entry.name, winner: winner.layer, loser: entry.layer });
  }
  const entries = [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  return { entries, conflicts };
}

/**
 * The connected accounts a run receives: every tool account of the collection (its client has
 * no provider), and the account its runtime names. Each comes through its client's injection:
 * environment entries and credential files carrying the access token (never the refresh token
 * or the client secret), with the token's expiry. An account that needs reconnecting sends no
 * token, only its state, so the agent removes what it held and says why.
 */
async function accountLayer(db: Db, keys: CollectionKeys, run: RunTable, out: BundleEntry[]) {
  const files: BundleFile[] = [];
  const accounts: AccountState[] = [];
  const configs = new Map<string, ClientConfig | undefined>();
  for (const row of await listAllAccounts(db, run.collection)) {
    if (!configs.has(row.client)) {
      const client = await getOAuthClient(db, run.collection, row.client);
      configs.set(row.client, client && (JSON.parse(client.config) as ClientConfig));
    }
    const config = configs.get(row.client);
    if (config === undefined) continue;
    const isRuntime = run.auth === 'account' && run.account === row.name;
    if ((config.provider ?? '') !== '' && !isRuntime) continue;
    const expiresAt = row.access_expires_at === null ? null : Number(row.access_expires_at);
    const expireTime = expiresAt === null ? undefined : new Date(expiresAt);
    accounts.push({ name: row.name, status: row.status, expireTime });
    if (row.status === 'needs_reconnect') continue;
    const tokens = JSON.parse(
      openValue(keys, accountTokensContext(row.collection, row.name), row.tokens_sealed),
    ) as StoredTokens;
    for (const inj of config.injection.env) {
      const value =
        inj.field === 'access_token' ? tokens.access_token : (tokens.extra[inj.field] ?? undefined);
      if (value === undefined) continue;
      out.push({
        name: inj.name,
        value,
        layer: Layer.LAYER_ACCOUNT,
        sensitive: true,
        expireTime,
        fingerprint: fingerprintValue(keys, value),
      });
    }
    for (const inj of config.injection.files) {
      const filled = fillTemplate(inj, { ...tokens, expires_at: expiresAt });
      if (filled === undefined) continue;
      const secretFingerprints = filled.secrets.map((v) => fingerprintValue(keys, v));
      files.push({
        path: inj.path,
        sensitive: true,
        account: row.name,
        ...filled,
        secretFingerprints,
      });
    }
  }
  return { files, accounts };
}
