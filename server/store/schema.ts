import type { Generated } from 'kysely';

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
  created_at: number;
  updated_at: number;
  created_by: string;
}

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

export interface Database {
  meta: MetaTable;
  collections: CollectionTable;
  provider_keys: ProviderKeyTable;
  env_vars: EnvVarTable;
  oauth_clients: OAuthClientTable;
  accounts: AccountTable;
  admin_tokens: AdminTokenTable;
  audit_events: AuditEventTable;
}
