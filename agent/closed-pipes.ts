/**
 * Output whose reader went away (`runkeys env list | head -1`): a write fails with EPIPE, and
 * later ones with ERR_STREAM_DESTROYED. Unhandled, either ends the process with a stack trace.
 */
const CLOSED = new Set(['EPIPE', 'ERR_STREAM_DESTROYED']);

let keepRunning = false;

/**
 * The agent outlives a closed output: it drops what it would have written there and goes on
 * managing its command and its files, rather than leave them behind.
 */
export function keepRunningOnClosedPipes(): void {
  keepRunning = true;
}

/**
 * Handles closed-pipe errors on these streams: `endQuietly` is called (once per error) unless
 * the agent runs in this process; any other error is thrown as before.
 */
export function handleClosedPipes(
  streams: readonly NodeJS.WritableStream[],
  endQuietly: () => void,
): void {
  for (const stream of streams) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === undefined || !CLOSED.has(err.code)) throw err;
      if (!keepRunning) endQuietly();
    });
  }
}
