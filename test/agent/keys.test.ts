import { spawn } from 'node:child_process';
import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import { newKeyPair } from '../../common/sealing.js';

describe('key generation', () => {
  it('makes X25519 key pairs whose halves belong together, as nacl.box has them', () => {
    for (let i = 0; i < 50; i++) {
      const { publicKey, secretKey } = newKeyPair();
      expect(secretKey.length).toBe(32);
      expect(Buffer.from(nacl.box.keyPair.fromSecretKey(secretKey).publicKey)).toEqual(
        Buffer.from(publicKey),
      );
    }
  });

  // On Node 20, exporting a just-generated key as a JWK deadlocks when a GC runs inside the
  // export. --gc-interval makes V8 collect every few dozen allocations; whether a GC then lands
  // inside an export depends on the heap, so several children with different intervals run (the
  // generators that exported JWKs hung in about half of such children). A hang blocks the whole
  // thread, so the loops run in child processes that the test can kill.
  it('generates thousands of keys under constant GC without hanging', async () => {
    const script = `
      const { newKeyPair } = await import('./common/sealing.ts');
      for (let i = 0; i < 6000; i++) newKeyPair();
      process.stdout.write('done');
    `;
    const intervals = [50, 77, 113, 150, 211, 307];
    const results = await Promise.all(intervals.map((every) => runChild(every, script)));
    expect(results).toEqual(intervals.map(() => ({ code: 0, out: 'done' })));
  }, 30_000);
});

async function runChild(
  gcEvery: number,
  script: string,
): Promise<{ code: number | null; out: string }> {
  const args = [`--gc-interval=${gcEvery}`, '--import', 'tsx', '--input-type=module', '-e', script];
  const child = spawn(process.execPath, args, {
    cwd: new URL('../..', import.meta.url),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  clearTimeout(timer);
  return { code, out };
}
