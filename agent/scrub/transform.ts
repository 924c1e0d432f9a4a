/**
 * A Node Transform around a scrub stream, with the idle flush: bytes held back for a possible
 * match are released once the input has been silent for `idleMs` (default 100 ms).
 */
import { Transform, type TransformCallback } from 'node:stream';

/** What the transform drives: a byte scrub stream or a trajectory scrubber. */
export interface FlushableStream {
  write(chunk: Uint8Array): Buffer;
  flush(): Buffer;
  end(): Buffer;
  readonly held: number;
}

export interface ScrubTransformOptions {
  /** Silence, in milliseconds, after which held bytes are released; default 100. */
  readonly idleMs?: number;
}

export const DEFAULT_IDLE_MS = 100;

export function scrubTransform(
  stream: FlushableStream,
  opts: ScrubTransformOptions = {},
): Transform {
  const idleMs = opts.idleMs ?? DEFAULT_IDLE_MS;
  let timer: NodeJS.Timeout | undefined;
  const stop = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
  };

  const transform = new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback) {
      stop();
      const out = stream.write(chunk);
      if (out.length > 0) this.push(out);
      if (stream.held > 0) {
        timer = setTimeout(() => {
          timer = undefined;
          const released = stream.flush();
          if (released.length > 0) transform.push(released);
        }, idleMs);
      }
      done();
    },
    flush(done: TransformCallback) {
      stop();
      const out = stream.end();
      if (out.length > 0) this.push(out);
      done();
    },
    destroy(err: Error | null, done: (error: Error | null) => void) {
      stop();
      done(err);
    },
  });
  return transform;
}
