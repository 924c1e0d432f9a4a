import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { normalise } from './helpers.js';

// The real `runkeys` binary (npm test builds it first).
const dir = mkdtempSync(join(tmpdir(), 'runkeys-scrub-'));

function secretsFile(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

async function scrub(args: readonly string[], input: string) {
  const r = await runCli(['scrub', ...args], { stdin: input });
  return { status: r.code, stdout: r.stdout, stderr: r.stderr };
}

const good = secretsFile(
  'good.json',
  JSON.stringify({ API_KEY: 'sk-fake-0123456789abcdef', PIN: '12' }),
);

describe('runkeys scrub', () => {
  it('masks stdin and names too-short values on stderr without their value', async () => {
    const r = await scrub(['--secrets-file', good], 'key=sk-fake-0123456789abcdef pin=12\n');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('key=[REDACTED:API_KEY] pin=12\n');
    expect(r.stderr).toBe('runkeys: warning: "PIN": value is shorter than 8 bytes; not scrubbed\n');
  });

  it('uses the marker and min-length options', async () => {
    const r = await scrub(
      ['--secrets-file', good, '--marker', '<{name} hidden>', '--min-length', '2'],
      'pin=12\n',
    );
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('pin=<PIN hidden>\n');
    expect(r.stderr).toBe('');
  });

  it('--trajectory joins streamed deltas and keeps lines valid JSON', async () => {
    const delta = (text: string) =>
      JSON.stringify({
        type: 'response.output_text.delta',
        item_id: 'm',
        output_index: 0,
        delta: text,
      });
    const input = `${delta('sk-fake-0123')}\n${delta('456789abcdef ok')}\n`;
    const r = await scrub(['--secrets-file', good, '--trajectory'], input);
    expect(r.status).toBe(0);
    const texts = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).delta as string);
    expect(texts.map(normalise)).toEqual(['[REDACTED]', ' ok']);
  });

  it('exits 2 with one line naming the problem when the file is not JSON, never its text', async () => {
    const bad = secretsFile('bad.json', '{"API_KEY": "sk-fake-SHOULD-NOT-PRINT",');
    const r = await scrub(['--secrets-file', bad], '');
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(`runkeys: "--secrets-file" ${JSON.stringify(bad)} is not valid JSON\n`);
  });

  it('exits 2 when a value is not a string', async () => {
    const bad = secretsFile('number.json', '{"PORT": 8080}');
    const r = await scrub(['--secrets-file', bad], '');
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('runkeys: "--secrets-file" value of "PORT" must be a string\n');
  });

  it('exits 2 when the file holds an array', async () => {
    const r = await scrub(['--secrets-file', secretsFile('array.json', '["x"]')], '');
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(
      'runkeys: "--secrets-file" must hold a JSON object of NAME -> string value\n',
    );
  });

  it('exits 2 when the file cannot be read', async () => {
    const missing = join(dir, 'missing.json');
    const r = await scrub(['--secrets-file', missing], '');
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(
      `runkeys: "--secrets-file" ${JSON.stringify(missing)} cannot be read (ENOENT)\n`,
    );
  });

  it('exits 2 on a marker with a quote', async () => {
    const r = await scrub(['--secrets-file', good, '--marker', 'x"y'], '');
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(
      'runkeys: "marker" must be printable ASCII without quote or backslash; got "x\\"y"\n',
    );
  });
});
