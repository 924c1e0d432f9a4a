import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

// `--database-url` mistakes read as one clear line, and the URL's password never appears.

const URL_WITH_PASSWORD = 'postgres://runkeys:hunter2-canary@127.0.0.1:1/runkeys';
const key = randomBytes(32).toString('base64');

describe('runkeys server --database-url', () => {
  it('needs RUNKEYS_MASTER_KEY', async () => {
    const res = await runCli(['server', '--database-url', URL_WITH_PASSWORD]);
    expect(res.code).toBe(2);
    expect(res.stderr).toBe(
      'runkeys: with --database-url, set RUNKEYS_MASTER_KEY: every replica needs the same ' +
        'master key, and it must not live beside the data\n',
    );
  });

  it('says which database cannot be reached, without its password', async () => {
    const res = await runCli(
      ['server', '--database-url', URL_WITH_PASSWORD, '--http-listen', 'off'],
      { env: { RUNKEYS_MASTER_KEY: key }, timeoutMs: 20_000 },
    );
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(
      'runkeys: the database at 127.0.0.1:1 cannot be reached: check --database-url and that ' +
        'PostgreSQL is up\n',
    );
    expect(res.stderr).not.toContain('hunter2-canary');
  });

  it('refuses a URL that is not postgres://, without repeating it', async () => {
    const res = await runCli(['server', '--database-url', 'mysql://u:hunter2-canary@h/db'], {
      env: { RUNKEYS_MASTER_KEY: key },
    });
    expect(res.code).toBe(2);
    expect(res.stderr).toBe('runkeys: --database-url must be a postgres:// or postgresql:// URL\n');
  });

  it('the rotation commands need the master key too', async () => {
    const res = await runCli(['server', 'rotate-run-key', '--database-url', URL_WITH_PASSWORD]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('set RUNKEYS_MASTER_KEY');
  });
});
