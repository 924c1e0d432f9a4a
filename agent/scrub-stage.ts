import type { Logger } from 'pino';
import type { BundleEntry } from '../proto/gen/runkeys/v1/runs.js';
import type { OutputStage, StreamName } from './output.js';
import type { Scrubber } from './scrub/scrubber.js';
import { scrubTransform } from './scrub/transform.js';

export interface ScrubStageOptions {
  /** Silence after which held-back bytes are released; default 100 ms. */
  idleMs?: number;
}

/**
 * The output stage with the scrubber in it: every sensitive entry of every bundle is
 * registered (once per value; old values stay for the run's life) before the agent writes the
 * .env or starts the command, and every stream the stage makes masks them from then on.
 */
export function scrubStage(
  scrubber: Scrubber,
  log: Logger,
  opts: ScrubStageOptions = {},
): OutputStage {
  const seen = new Set<string>();
  return {
    stream(_name: StreamName) {
      return scrubTransform(scrubber.createStream(), { idleMs: opts.idleMs });
    },
    update(entries: BundleEntry[]) {
      const fresh = entries.filter((e) => e.sensitive && !seen.has(`${e.name}\0${e.value}`));
      for (const e of fresh) seen.add(`${e.name}\0${e.value}`);
      const warnings = scrubber.registerAll(
        fresh.map((e) => ({ name: e.name, value: e.value, sensitive: true })),
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
