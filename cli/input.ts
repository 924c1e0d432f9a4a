import { isUtf8 } from 'node:buffer';
import { readFileSync } from 'node:fs';
import { UsageError } from './errors.js';

export interface SecretSource {
  fromFile?: string;
  keepTrailingNewline?: boolean;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) {
    chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  }
  return Buffer.concat(chunks);
}

/**
 * Reads a secret from --from-file or stdin, never from an argument: arguments leak into shell
 * history and `ps`. One trailing newline (as `echo` adds) is dropped unless asked to keep it.
 */
export async function readSecret(
  src: SecretSource,
  stdin: NodeJS.ReadStream,
  what: string,
): Promise<string> {
  let raw: Buffer;
  if (src.fromFile !== undefined) {
    try {
      raw = readFileSync(src.fromFile);
    } catch {
      throw new UsageError(`cannot read --from-file ${src.fromFile}`);
    }
  } else {
    if (stdin.isTTY === true) {
      throw new UsageError(
        `no ${what} on stdin: pipe it in (printf %s "$VALUE" | runkeys ...) or use --from-file`,
      );
    }
    raw = await readAll(stdin);
  }
  const where = src.fromFile === undefined ? 'stdin' : `--from-file ${src.fromFile}`;
  // Decoding would replace each invalid byte with U+FFFD and store something else than given.
  if (!isUtf8(raw)) {
    throw new UsageError(
      `the ${what} on ${where} is not valid UTF-8: runkeys keeps text; ` +
        'store binary data base64-encoded',
    );
  }
  let text = raw.toString('utf8');
  if (!src.keepTrailingNewline) text = text.replace(/\r?\n$/, '');
  if (text === '') {
    throw new UsageError(`no ${what} on ${where}: the ${what} must not be empty`);
  }
  return text;
}

/** Commands that take a secret refuse extra arguments, which would be values on argv. */
export function refuseValueArguments(extra: string[], what: string): void {
  if (extra.length > 0) {
    throw new UsageError(
      `a ${what} is never taken as an argument (it would leak into shell history and ps); ` +
        'pipe it on stdin or use --from-file',
    );
  }
}
