import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { allHold, valueAt } from '../../agent/scrub/json-path.js';
import { Scrubber } from '../../agent/scrub/scrubber.js';
import { TrajectoryScrubber } from '../../agent/scrub/trajectory.js';
import { TRAJECTORY_PRESETS } from '../../agent/scrub/trajectory-presets.js';
import { secrets, textWith } from './arbitraries.js';
import { HAS_SHARED, HERE, normalise, SHARED } from './helpers.js';

const SECRET = 'sk-fake-0123456789abcdef';
const FIXTURES = join(HERE, 'fixtures/trajectories');

function scrubberWith(values: Record<string, string>): Scrubber {
  const scrubber = new Scrubber();
  for (const [name, value] of Object.entries(values)) scrubber.register(name, value);
  return scrubber;
}

function runLines(scrubber: Scrubber, input: Buffer, cuts: readonly number[] = []): string {
  const t = new TrajectoryScrubber(scrubber);
  const parts: Buffer[] = [];
  let at = 0;
  for (const cut of [...cuts, input.length]) {
    parts.push(t.write(input.subarray(at, cut)));
    at = cut;
  }
  parts.push(t.end());
  return Buffer.concat(parts).toString('utf8');
}

/** The delta text of each line (undefined for other lines), by the preset rules. */
function deltaTexts(lines: readonly string[]): (string | undefined)[] {
  return lines.map((line) => {
    const root: unknown = JSON.parse(line);
    for (const p of TRAJECTORY_PRESETS) {
      for (const rule of p.deltas) {
        const text = valueAt(root, rule.text);
        if (allHold(root, rule.when) && typeof text === 'string') return text;
      }
    }
    return undefined;
  });
}

const linesOf = (text: string) => text.split('\n').filter((l) => l.length > 0);

describe('TrajectoryScrubber on the format fixtures', () => {
  for (const file of readdirSync(FIXTURES)) {
    const input = readFileSync(join(FIXTURES, file));

    it(`${file}: no line keeps the value, raw or escaped, and every line is JSON`, () => {
      const out = runLines(scrubberWith({ API_KEY: SECRET }), input);
      expect(out).not.toContain(SECRET);
      expect(out).not.toMatch(/0123456789|sk-fake-/);
      const lines = linesOf(out);
      expect(lines).toHaveLength(linesOf(input.toString()).length);
      for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
    });

    it(`${file}: is the same for every single split point`, () => {
      const scrubber = scrubberWith({ API_KEY: SECRET });
      const whole = runLines(scrubber, input);
      for (let k = 0; k <= input.length; k += 7) expect(runLines(scrubber, input, [k])).toBe(whole);
    });

    it(`${file}: is byte-identical when no registered value occurs`, () => {
      expect(runLines(scrubberWith({ OTHER: 'not-in-these-files-42' }), input)).toBe(
        input.toString(),
      );
    });
  }

  it('masks a value split across text deltas with one marker, in the record it starts in', () => {
    const input = readFileSync(join(FIXTURES, 'claude-stream-json.jsonl'));
    const lines = linesOf(runLines(scrubberWith({ API_KEY: SECRET }), input));
    const texts = deltaTexts(lines).filter((t) => t !== undefined);
    expect(texts.slice(0, 3).map(normalise)).toEqual([
      'The key is [REDACTED]',
      '',
      ', keep it safe 😀',
    ]);
    // The rate_limit_event interleaved in the block stays in its place.
    expect(JSON.parse(lines[4]!).type).toBe('rate_limit_event');
  });

  it('masks a JSON-escaped value split across input_json_delta fragments', () => {
    const input = readFileSync(join(FIXTURES, 'claude-stream-json.jsonl'));
    const lines = linesOf(runLines(scrubberWith({ API_KEY: SECRET }), input));
    const json = deltaTexts(lines)
      .filter((t) => t !== undefined)
      .slice(3)
      .join('');
    expect(normalise(json)).toBe(
      `{"command": "curl -H 'x-api-key: [REDACTED]' https://api.example"}`,
    );
  });

  it('ACP: a value split over three chunks is masked in the chunk it starts in', () => {
    const input = readFileSync(join(FIXTURES, 'acp.ndjson'));
    const lines = linesOf(runLines(scrubberWith({ API_KEY: SECRET }), input));
    expect(deltaTexts(lines).map((t) => (t === undefined ? t : normalise(t)))).toEqual([
      undefined,
      '',
      'Here: [REDACTED]',
      '',
      ' done',
      undefined,
      undefined,
    ]);
    expect(normalise(JSON.parse(lines[5]!).params.update.title)).toBe('echo [REDACTED]');
  });

  it('scrubs keys as well as values', () => {
    const line = `${JSON.stringify({ [SECRET]: 'v', nested: { [`x ${SECRET}`]: 1 } })}\n`;
    const out = runLines(scrubberWith({ API_KEY: SECRET }), Buffer.from(line));
    expect(normalise(out)).toBe('{"[REDACTED]":"v","nested":{"x [REDACTED]":1}}\n');
  });

  it('keeps a line valid when a match would cut through JSON syntax', () => {
    // The value ends with a backslash; inside a JSON string it is escaped as `\\`, and the raw
    // value (ending in one backslash) would otherwise swallow half of the escape.
    const value = 'tok-9f8e7d6c\\';
    const line = `${JSON.stringify({ a: value, b: `${value}"` })}\n`;
    const out = runLines(scrubberWith({ V: value }), Buffer.from(line));
    expect(normalise(out)).toBe('{"a":"[REDACTED]","b":"[REDACTED]\\""}\n');
  });

  it('releases a waiting record on idle flush, and masks the rest when the value completes', () => {
    const t = new TrajectoryScrubber(scrubberWith({ API_KEY: SECRET }));
    const delta = (text: string) => {
      const update = { sessionUpdate: 'agent_message_chunk', content: { type: 'text', text } };
      const params = { sessionId: 's', update };
      return `${JSON.stringify({ jsonrpc: '2.0', method: 'session/update', params })}\n`;
    };
    expect(t.write(Buffer.from(delta('key sk-fake-0123'))).length).toBe(0);
    expect(t.held).toBe(1);
    const first = deltaTexts(linesOf(t.flush().toString()));
    expect(first.map((x) => normalise(x!))).toEqual(['key [REDACTED]']);
    const rest = deltaTexts(
      linesOf(Buffer.concat([t.write(Buffer.from(delta('456789abcdef!'))), t.end()]).toString()),
    );
    expect(rest).toEqual(['!']);
  });

  it('passes lines that are not JSON through the byte layer', () => {
    const out = runLines(
      scrubberWith({ API_KEY: SECRET }),
      Buffer.from(`plain ${SECRET} text\nnext`),
    );
    expect(normalise(out)).toBe('plain [REDACTED] text\nnext');
  });
});

describe('TrajectoryScrubber properties', () => {
  it('keeps every JSON line valid and no planted value in any decoded string', () => {
    const scenario = secrets.chain((values) =>
      fc.record({
        values: fc.constant(values),
        rows: fc.array(fc.tuple(textWith(values), textWith(values)), {
          minLength: 1,
          maxLength: 6,
        }),
      }),
    );
    fc.assert(
      fc.property(scenario, ({ values, rows }) => {
        const scrubber = new Scrubber();
        for (const [i, v] of values.entries()) scrubber.register(`S${i}`, v);
        const input = rows
          .map(([k, v]) => `${JSON.stringify({ [k]: v, out: [v, { k }] })}\n`)
          .join('');
        const lines = linesOf(runLines(scrubber, Buffer.from(input)));
        expect(lines).toHaveLength(rows.length);
        for (const line of lines) {
          const strings = JSON.stringify(JSON.parse(line), null, 0);
          for (const v of values.filter((x) => Buffer.byteLength(x.trim()) >= 8)) {
            expect(JSON.parse(line)).toBeDefined();
            expect(decodedStrings(JSON.parse(line)).some((s) => s.includes(v))).toBe(false);
          }
          expect(strings.length).toBeGreaterThan(0);
        }
      }),
      { numRuns: 200 },
    );
  });
});

function decodedStrings(node: unknown): string[] {
  if (typeof node === 'string') return [node];
  if (Array.isArray(node)) return node.flatMap(decodedStrings);
  if (node !== null && typeof node === 'object') {
    return Object.entries(node).flatMap(([k, v]) => [k, ...decodedStrings(v)]);
  }
  return [];
}

describe.runIf(HAS_SHARED)('TrajectoryScrubber on ../shared/trajectories', () => {
  const dir = join(SHARED, 'trajectories');
  const files = HAS_SHARED ? readdirSync(dir).filter((f) => /\.(jsonl|ndjson)$/.test(f)) : [];

  for (const file of files) {
    const input = readFileSync(join(dir, file));

    it(`${file}: is byte-identical when no registered value occurs`, () => {
      expect(runLines(scrubberWith({ OTHER: 'not-in-these-files-42' }), input)).toBe(
        input.toString(),
      );
    });

    it(`${file}: masks text registered across each delta boundary`, () => {
      const lines = linesOf(input.toString());
      const texts = deltaTexts(lines).filter((t): t is string => t !== undefined && t.length >= 6);
      const values: Record<string, string> = {};
      for (let i = 0; i + 1 < texts.length && i < 40; i++) {
        const v = texts[i]!.slice(-6) + texts[i + 1]!.slice(0, 6);
        if (v.trim().length >= 8) values[`B${i}`] = v;
      }
      const out = linesOf(runLines(scrubberWith(values), input));
      const joined = deltaTexts(out)
        .filter((t) => t !== undefined)
        .join('');
      for (const v of Object.values(values)) expect(joined).not.toContain(v);
      for (const line of out) expect(() => JSON.parse(line)).not.toThrow();
    });
  }
});
