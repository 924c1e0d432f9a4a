import type { Logger } from 'pino';
import type { OutputStage, StageSecret, StreamName } from './output.js';
import type { LeakCounter } from './report.js';
import type { Scrubber } from './scrub/scrubber.js';
import { scrubTransform } from './scrub/transform.js';

export interface ScrubStageOptions {
  /** Silence after which held-back bytes are released; default 100 ms. */
  idleMs?: number;
  /** Counts each stream's replacements for the leak reports. */
  leaks?: LeakCounter;
}

/**
 * The output stage with the scrubber in it: every secret of every bundle is registered (once
 * per name and value; old values stay for the run's life) before the agent writes the .env or
 * a credential file or starts the command, and every stream the stage makes masks them from
 * then on. Which values are secret is bundleSecrets()'s business, not this stage's.
 */
export function scrubStage(
  scrubber: Scrubber,
  log: Logger,
  opts: ScrubStageOptions = {},
): OutputStage {
  const seen = new Set<string>();
  return {
    stream(name: StreamName) {
      return scrubTransform(scrubber.createStream(opts.leaks?.listener(name)), {
        idleMs: opts.idleMs,
      });
    },
    update(secrets: readonly StageSecret[]) {
      const fresh = secrets.filter((s) => !seen.has(`${s.name}\0${s.value}`));
      for (const s of fresh) seen.add(`${s.name}\0${s.value}`);
      const warnings = scrubber.registerAll(
        fresh.map((s) => ({ name: s.name, value: s.value, sensitive: true, tag: s.fingerprint })),
      );
      for (const w of warnings)
        log.warn({ variable: w.name, reason: w.reason }, 'value not scrubbed');
    },
  };
}

/**
 * A destination for the agent's own log lines and messages that masks every registered value,
 * should one ever reach them. Each write is one whole line, scrubbed on its own.
 */
export function scrubbedWriter(
  scrubber: Scrubber,
  out: NodeJS.WritableStream,
): { write(text: string): boolean } {
  return { write: (text: string) => out.write(scrubber.scrub(Buffer.from(text, 'utf8'))) };
}
