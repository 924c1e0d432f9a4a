import { type Kysely, type Migration, type MigrationProvider, sql } from 'kysely';

export type Dialect = 'sqlite' | 'postgres';

/**
 * Migrations live in code, numbered, and never change once released. Column types are chosen to
 * mean the same on SQLite and PostgreSQL: text, bigint milliseconds, integer flags.
 */
function migrations(dialect: Dialect): Record<string, Migration> {
  const serial = dialect === 'postgres' ? 'bigserial' : 'integer';
  return {
    '0001_layers': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('meta')
          .addColumn('key', 'text', (c) => c.primaryKey())
          .addColumn('value', 'text', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('collections')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('description', 'text', (c) => c.notNull())
          .addColumn('data_key_sealed', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addColumn('created_by', 'text', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('provider_keys')
          .addColumn('collection', 'text', (c) =>
            c.notNull().references('collections.name').onDelete('cascade'),
          )
          .addColumn('provider', 'text', (c) => c.notNull())
          .addColumn('credential_sealed', 'text', (c) => c.notNull())
          .addColumn('fields_set', 'text', (c) => c.notNull())
          .addColumn('last_four', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addColumn('created_by', 'text', (c) => c.notNull())
          .addColumn('updated_by', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('provider_keys_pk', ['collection', 'provider'])
          .execute();
        await db.schema
          .createTable('env_vars')
          .addColumn('collection', 'text', (c) =>
            c.notNull().references('collections.name').onDelete('cascade'),
          )
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('sensitive', 'integer', (c) => c.notNull())
          .addColumn('value_sealed', 'text', (c) => c.notNull())
          .addColumn('value_bytes', 'integer', (c) => c.notNull())
          .addColumn('fingerprint', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addColumn('created_by', 'text', (c) => c.notNull())
          .addColumn('updated_by', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('env_vars_pk', ['collection', 'name'])
          .execute();
        await db.schema
          .createTable('oauth_clients')
          .addColumn('collection', 'text', (c) =>
            c.notNull().references('collections.name').onDelete('cascade'),
          )
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('config', 'text', (c) => c.notNull())
          .addColumn('client_secret_sealed', 'text')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addColumn('created_by', 'text', (c) => c.notNull())
          .addColumn('updated_by', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('oauth_clients_pk', ['collection', 'name'])
          .execute();
        await db.schema
          .createTable('accounts')
          .addColumn('collection', 'text', (c) =>
            c.notNull().references('collections.name').onDelete('cascade'),
          )
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('client', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('scopes', 'text', (c) => c.notNull())
          .addColumn('tokens_sealed', 'text', (c) => c.notNull())
          .addColumn('refresh_token_set', 'integer', (c) => c.notNull())
          .addColumn('access_expires_at', 'bigint')
          .addColumn('last_refresh_at', 'bigint')
          .addColumn('last_error', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addColumn('created_by', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('accounts_pk', ['collection', 'name'])
          .addForeignKeyConstraint(
            'accounts_client_fk',
            ['collection', 'client'],
            'oauth_clients',
            ['collection', 'name'],
          )
          .execute();
        await db.schema
          .createTable('admin_tokens')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('collection', 'text', (c) =>
            c.references('collections.name').onDelete('cascade'),
          )
          .addColumn('role', 'text', (c) => c.notNull())
          .addColumn('description', 'text', (c) => c.notNull())
          .addColumn('secret_hash', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('created_by', 'text', (c) => c.notNull())
          .addColumn('expires_at', 'bigint')
          .addColumn('last_used_at', 'bigint')
          .execute();
        await db.schema
          .createTable('audit_events')
          .addColumn('seq', sql.raw(serial), (c) =>
            dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
          )
          .addColumn('id', 'text', (c) => c.notNull().unique())
          .addColumn('time', 'bigint', (c) => c.notNull())
          .addColumn('actor', 'text', (c) => c.notNull())
          .addColumn('collection', 'text', (c) => c.notNull())
          .addColumn('action', 'text', (c) => c.notNull())
          .addColumn('target', 'text', (c) => c.notNull())
          .addColumn('fingerprint', 'text', (c) => c.notNull())
          .addColumn('details', 'text', (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex('audit_events_collection')
          .on('audit_events')
          .columns(['collection', 'seq'])
          .execute();
      },
    },
    '0002_runs': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .alterTable('collections')
          .addColumn('version', 'bigint', (c) => c.notNull().defaultTo(0))
          .execute();
        await db.schema
          .createTable('run_keys')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('public_key', 'text', (c) => c.notNull())
          .addColumn('secret_sealed', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('retired_at', 'bigint')
          .execute();
        await db.schema
          .createTable('runs')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('collection', 'text', (c) =>
            c.notNull().references('collections.name').onDelete('cascade'),
          )
          .addColumn('provider', 'text', (c) => c.notNull())
          .addColumn('auth', 'text', (c) => c.notNull())
          .addColumn('account', 'text', (c) => c.notNull())
          .addColumn('labels', 'text', (c) => c.notNull())
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .addColumn('ended_at', 'bigint')
          .addColumn('end_reason', 'text', (c) => c.notNull())
          .addColumn('created_by', 'text', (c) => c.notNull())
          .addColumn('run_key_id', 'text', (c) => c.notNull().references('run_keys.id'))
          .addColumn('bootstrap_verifier', 'text')
          .addColumn('bootstrap_expires_at', 'bigint', (c) => c.notNull())
          .addColumn('agent_public_key', 'text')
          .addColumn('attached_at', 'bigint')
          .addColumn('resume_verifier', 'text')
          .addColumn('resume_prev_verifier', 'text')
          .addColumn('delivered_version', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex('runs_collection')
          .on('runs')
          .columns(['collection', 'id'])
          .execute();
      },
    },
    '0003_oauth': {
      async up(db: Kysely<unknown>) {
        await db.schema.alterTable('accounts').addColumn('lifetime_ms', 'bigint').execute();
        await db.schema
          .alterTable('accounts')
          .addColumn('fence', 'bigint', (c) => c.notNull().defaultTo(0))
          .execute();
        await db.schema.alterTable('accounts').addColumn('lease_owner', 'text').execute();
        await db.schema.alterTable('accounts').addColumn('lease_until', 'bigint').execute();
        await db.schema
          .alterTable('accounts')
          .addColumn('lease_taken_over', 'integer', (c) => c.notNull().defaultTo(0))
          .execute();
        await db.schema.alterTable('accounts').addColumn('next_attempt_at', 'bigint').execute();
        await db.schema
          .alterTable('accounts')
          .addColumn('failures', 'integer', (c) => c.notNull().defaultTo(0))
          .execute();
        await db.schema
          .createTable('connect_flows')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('collection', 'text', (c) =>
            c.notNull().references('collections.name').onDelete('cascade'),
          )
          .addColumn('account', 'text', (c) => c.notNull())
          .addColumn('client', 'text', (c) => c.notNull())
          .addColumn('method', 'text', (c) => c.notNull())
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('state_hash', 'text', (c) => c.unique())
          .addColumn('secrets_sealed', 'text', (c) => c.notNull())
          .addColumn('authorization_url', 'text', (c) => c.notNull())
          .addColumn('user_code', 'text', (c) => c.notNull())
          .addColumn('verification_uri', 'text', (c) => c.notNull())
          .addColumn('verification_uri_complete', 'text', (c) => c.notNull())
          .addColumn('interval_s', 'integer', (c) => c.notNull())
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .addColumn('error', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('created_by', 'text', (c) => c.notNull())
          .execute();
      },
    },
    '0004_reports': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .alterTable('collections')
          .addColumn('max_offline_s', 'bigint', (c) => c.notNull().defaultTo(0))
          .execute();
        await db.schema
          .alterTable('runs')
          .addColumn('report_seq', 'bigint', (c) => c.notNull().defaultTo(0))
          .execute();
        await db.schema
          .alterTable('runs')
          .addColumn('applied_version', 'bigint', (c) => c.notNull().defaultTo(0))
          .execute();
        // What each bundle carried (names, layers, value fingerprints), once per digest.
        await db.schema
          .createTable('bundle_contents')
          .addColumn('collection', 'text', (c) =>
            c.notNull().references('collections.name').onDelete('cascade'),
          )
          .addColumn('digest', 'text', (c) => c.notNull())
          .addColumn('version', 'bigint', (c) => c.notNull())
          .addColumn('contents', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('bundle_contents_pk', ['collection', 'digest'])
          .execute();
        await db.schema
          .createTable('run_receipts')
          .addColumn('run_id', 'text', (c) => c.notNull().references('runs.id').onDelete('cascade'))
          .addColumn('collection', 'text', (c) => c.notNull())
          .addColumn('version', 'bigint', (c) => c.notNull())
          .addColumn('digest', 'text', (c) => c.notNull())
          .addColumn('applied_at', 'bigint', (c) => c.notNull())
          .addColumn('received_at', 'bigint', (c) => c.notNull())
          .addColumn('env_file', 'integer', (c) => c.notNull())
          .addColumn('command', 'integer', (c) => c.notNull())
          .addPrimaryKeyConstraint('run_receipts_pk', ['run_id', 'version'])
          .execute();
        await db.schema
          .createIndex('run_receipts_collection')
          .on('run_receipts')
          .columns(['collection', 'received_at'])
          .execute();
        await db.schema
          .createTable('run_leaks')
          .addColumn('run_id', 'text', (c) => c.notNull().references('runs.id').onDelete('cascade'))
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('stream', 'text', (c) => c.notNull())
          .addColumn('fingerprint', 'text', (c) => c.notNull())
          .addColumn('count', 'bigint', (c) => c.notNull())
          .addColumn('first_at', 'bigint', (c) => c.notNull())
          .addColumn('last_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('run_leaks_pk', ['run_id', 'name', 'stream', 'fingerprint'])
          .execute();
      },
    },
    '0005_audit_time': {
      async up(db: Kysely<unknown>) {
        // The audit retention sweep finds the events older than its cutoff by time.
        await db.schema
          .createIndex('audit_events_time')
          .on('audit_events')
          .column('time')
          .execute();
      },
    },
    '0006_server_presence': {
      async up(db: Kysely<unknown>) {
        // Each running control plane's heartbeat; rotate-master-key refuses while one is fresh.
        await db.schema
          .createTable('server_presence')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('host', 'text', (c) => c.notNull())
          .addColumn('pid', 'bigint', (c) => c.notNull())
          .addColumn('started_at', 'bigint', (c) => c.notNull())
          .addColumn('seen_at', 'bigint', (c) => c.notNull())
          .execute();
      },
    },
    '0007_flow_poll_lease': {
      async up(db: Kysely<unknown>) {
        // Which process polls a device flow, and until when: another replica takes over a
        // flow whose poller stopped.
        await db.schema.alterTable('connect_flows').addColumn('poll_owner', 'text').execute();
        await db.schema.alterTable('connect_flows').addColumn('poll_until', 'bigint').execute();
      },
    },
  };
}

export class CodeMigrations implements MigrationProvider {
  constructor(private readonly dialect: Dialect) {}

  async getMigrations(): Promise<Record<string, Migration>> {
    return migrations(this.dialect);
  }
}
