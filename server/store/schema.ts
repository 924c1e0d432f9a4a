import type { Generated, Insertable, Selectable } from 'kysely';

/**
 * Row types of the store. Times are milliseconds since the epoch; sealed columns hold the output
 * of crypto/seal.ts and nothing else stores a value.
 */
export interface MetaTable {
  key: string;
  value: string;
}

export interface CollectionTable {
  name: string;
  description: string;
  data_key_sealed: string;
  /** Bumped by every change to the collection's layers; bundles carry it. */
  version: Generated<number>;
  created_at: number;
  updated_at: number;
  created_by: string;
  /** Agents' outage limit in seconds; 0 leaves each agent's own --max-offline. */
  max_offline_s: Generated<number>;
}

export type CollectionRow = Selectable<CollectionTable>;
export type NewCollectionRow = Insertable<CollectionTable>;

export interface ProviderKeyTable {
  collection: string;
  provider: string;
  credential_sealed: string;
  fields_set: string;
  last_four: string;
  created_at: number;
  updated_at: number;
  created_by: string;
  updated_by: string;
}

export interface EnvVarTable {
  collection: string;
  name: string;
  sensitive: number;
  value_sealed: string;
  value_bytes: number;
  fingerprint: string;
  created_at: number;
  updated_at: number;
  created_by: string;
  updated_by: string;
}

export interface OAuthClientTable {
  collection: string;
  name: string;
  /** JSON of the registration without the client secret. */
  config: string;
  client_secret_sealed: string | null;
  created_at: number;
  updated_at: number;
  created_by: string;
  updated_by: string;
}

export interface AccountTable {
  collection: string;
  name: string;
  client: string;
  status: string;
  scopes: string;
  tokens_sealed: string;
  refresh_token_set: number;
  access_expires_at: number | null;
  last_refresh_at: number | null;
  last_error: string;
  created_at: number;
  updated_at: number;
  created_by: string;
  /** Lifetime of the access token held, for the refresh margin; null when unknown. */
  lifetime_ms: number | null;
  /** Bumped by every refresh lease taken; a result is stored only under the fence it began with. */
  fence: number;
  /** Which process holds the refresh lease, and until when; null when nobody does. */
  lease_owner: string | null;
  lease_until: number | null;
  /** 1 when the lease now held was taken over from a holder that never released it. */
  lease_taken_over: number;
  /** After a transient failure: not before this time. */
  next_attempt_at: number | null;
  /** Transient failures in a row. */
  failures: number;
}

export type ConnectFlowState = 'pending' | 'connected' | 'failed';

export interface ConnectFlowTable {
  id: string;
  collection: string;
  account: string;
  client: string;
  method: 'authorization_code' | 'device';
  state: ConnectFlowState;
  /** SHA-256 of the OAuth state parameter, to find the flow a callback belongs to. */
  state_hash: string | null;
  /** Sealed JSON: PKCE verifier and state, or the device code. */
  secrets_sealed: string;
  authorization_url: string;
  user_code: string;
  verification_uri: string;
  verification_uri_complete: string;
  interval_s: number;
  expires_at: number;
  error: string;
  created_at: number;
  created_by: string;
  /** The process polling a device flow's token endpoint, and how long its lease lasts. */
  poll_owner: string | null;
  poll_until: number | null;
}

export interface AdminTokenTable {
  id: string;
  collection: string | null;
  role: string;
  description: string;
  secret_hash: string;
  created_at: number;
  created_by: string;
  expires_at: number | null;
  last_used_at: number | null;
}

export interface AuditEventTable {
  seq: Generated<number>;
  id: string;
  time: number;
  actor: string;
  collection: string;
  action: string;
  target: string;
  fingerprint: string;
  details: string;
}

export type RunState = 'pending' | 'attached' | 'ended' | 'expired';

export interface RunTable {
  id: string;
  collection: string;
  provider: string;
  /** How the runtime authenticates: 'api_key', or 'account' with account set. */
  auth: string;
  account: string;
  labels: string;
  state: RunState;
  created_at: number;
  expires_at: number;
  ended_at: number | null;
  end_reason: string;
  created_by: string;
  run_key_id: string;
  /** Ed25519 public key derived from the bootstrap secret; the secret itself is not kept. */
  bootstrap_verifier: string | null;
  bootstrap_expires_at: number;
  agent_public_key: string | null;
  attached_at: number | null;
  /** Verifiers of the current and the previous resume credential. */
  resume_verifier: string | null;
  resume_prev_verifier: string | null;
  /** Last bundle version delivered. */
  delivered_version: number;
  /** Number of the last report taken from the agent (AgentService.Report). */
  report_seq: number;
  /** Last bundle version the agent acknowledged applying. */
  applied_version: number;
}

/** What one bundle carried: JSON [[name, layer, fingerprint], ...] sorted by name. */
export interface BundleContentsTable {
  collection: string;
  digest: string;
  version: number;
  contents: string;
  created_at: number;
}

export interface RunReceiptTable {
  run_id: string;
  collection: string;
  version: number;
  digest: string;
  /** The agent's clock. */
  applied_at: number;
  /** The control plane's clock. */
  received_at: number;
  env_file: number;
  command: number;
}

export interface RunLeakTable {
  run_id: string;
  name: string;
  stream: string;
  fingerprint: string;
  count: number;
  first_at: number;
  last_at: number;
}

export interface RunKeyTable {
  id: string;
  public_key: string;
  secret_sealed: string;
  created_at: number;
  retired_at: number | null;
}

/** A running control plane, as its heartbeat last left it. */
export interface ServerPresenceTable {
  id: string;
  host: string;
  pid: number;
  started_at: number;
  seen_at: number;
}

export interface Database {
  meta: MetaTable;
  server_presence: ServerPresenceTable;
  collections: CollectionTable;
  provider_keys: ProviderKeyTable;
  env_vars: EnvVarTable;
  oauth_clients: OAuthClientTable;
  accounts: AccountTable;
  connect_flows: ConnectFlowTable;
  admin_tokens: AdminTokenTable;
  audit_events: AuditEventTable;
  runs: RunTable;
  run_keys: RunKeyTable;
  bundle_contents: BundleContentsTable;
  run_receipts: RunReceiptTable;
  run_leaks: RunLeakTable;
}
