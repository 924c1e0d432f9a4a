import type { Transform } from 'node:stream';

export type StreamName = 'stdout' | 'stderr';

/** A value the output stage masks from then on, with the name its marker shows. */
export interface StageSecret {
  readonly name: string;
  readonly value: string;
  /** The value's keyed fingerprint from the bundle, which leak reports name it by. */
  readonly fingerprint?: string;
}

/**
 * The one stage every byte the child prints goes through on its way out. The agent tells it
 * about each bundle's secrets (see bundleSecrets()) before anything else sees them (the child,
 * the .env, the credential files), so the stage can scrub the values from what follows.
 */
export interface OutputStage {
  stream(name: StreamName): Transform;
  update(secrets: readonly StageSecret[]): void;
}
