import type { Transform } from 'node:stream';
import type { BundleEntry } from '../proto/gen/runkeys/v1/runs.js';

export type StreamName = 'stdout' | 'stderr';

/**
 * The one stage every byte the child prints goes through on its way out. The agent tells it
 * about each bundle's entries before anything else sees them (the child, the .env), so the
 * stage can scrub the values from what follows.
 */
export interface OutputStage {
  stream(name: StreamName): Transform;
  update(entries: BundleEntry[]): void;
}
