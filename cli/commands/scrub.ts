/**
 * `runkeys scrub --secrets-file F [--trajectory] [--min-length N] [--marker M]`: stdin to stdout
 * through the same engine the agent uses. F is a JSON object of NAME -> value, every value
 * sensitive. Warnings and errors name variables and files, never values.
 */
import { readFileSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { type Command, InvalidArgumentError } from 'commander';
import { Scrubber } from '../../agent/scrub/scrubber.js';
import { TrajectoryScrubber } from '../../agent/scrub/trajectory.js';
import { scrubTransform } from '../../agent/scrub/transform.js';
import { UsageError } from '../errors.js';

interface ScrubFlags {
  secretsFile: string;
  trajectory?: boolean;
  minLength?: number;
  marker?: string;
  idleMs?: number;
}

export function registerScrubCommand(program: Command): void {
  program
    .command('scrub')
    .description('mask secret values, and their encoded forms, in stdin; write stdout')
    .requiredOption('--secrets-file <file>', 'JSON object of NAME -> value; every value is secret')
    .option('--trajectory', 'treat input as JSON Lines and join streamed text deltas')
    .option('--min-length <n>', 'shortest value scrubbed, in bytes (default 8)', integer)
    .option('--marker <text>', 'marker template; {name} becomes the variable name')
    .option(
      '--idle-ms <n>',
      'release held-back bytes after this much silence (default 100)',
      integer,
    )
    .action(async (flags: ScrubFlags) => {
      let scrubber: Scrubber;
      try {
        scrubber = new Scrubber({ minLength: flags.minLength, marker: flags.marker });
        const secrets = readSecrets(flags.secretsFile);
        for (const w of scrubber.registerAll(secrets)) {
          process.stderr.write(`runkeys: warning: "${w.name}": ${w.reason}\n`);
        }
      } catch (err) {
        // One `runkeys: ...` line and exit 2, like every other usage error.
        throw new UsageError((err as Error).message);
      }
      const stream = flags.trajectory ? new TrajectoryScrubber(scrubber) : scrubber.createStream();
      await pipeline(
        process.stdin,
        scrubTransform(stream, { idleMs: flags.idleMs }),
        process.stdout,
      );
    });
}

function readSecrets(file: string): { name: string; value: string; sensitive: true }[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new Error(`"--secrets-file" ${JSON.stringify(file)} cannot be read (${code})`);
  }

  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // The parser's message may quote the file's text, which holds secrets: say only where.
    throw new Error(`"--secrets-file" ${JSON.stringify(file)} is not valid JSON`);
  }

  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new Error(`"--secrets-file" must hold a JSON object of NAME -> string value`);
  }

  return Object.entries(parsed).map(([name, value]) => {
    if (typeof value !== 'string') {
      throw new Error(`"--secrets-file" value of ${JSON.stringify(name)} must be a string`);
    }
    return { name, value, sensitive: true as const };
  });
}

function integer(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) {
    throw new InvalidArgumentError(`must be a positive integer; got ${text}`);
  }
  return n;
}
