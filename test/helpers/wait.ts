import { readFileSync } from 'node:fs';

const POLL_MS = 20;

/**
 * Polls until `condition` returns something other than undefined or false, and returns it.
 * Fails after timeoutMs with what was awaited, so a timeout reads as the broken expectation.
 */
export async function waitFor<T>(
  condition: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs: number,
  what = 'the condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value !== undefined && value !== false) return value;
    if (Date.now() >= deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** The file's text, or undefined while it does not exist. */
export function readIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Waits for a file to exist and satisfy `ready`; returns its text. */
export function waitForFile(
  path: string,
  timeoutMs: number,
  ready: (text: string) => boolean = () => true,
): Promise<string> {
  return waitFor(
    () => {
      const text = readIfExists(path);
      return text !== undefined && ready(text) ? text : undefined;
    },
    timeoutMs,
    `${path} to be written`,
  );
}
