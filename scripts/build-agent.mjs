// Bundles the agent into one file that runs with Node alone, for copying into sandbox images.
import { existsSync } from 'node:fs';
import { build } from 'esbuild';

if (existsSync('agent/main.ts')) {
  await build({
    entryPoints: ['agent/main.ts'],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    outfile: 'dist/runkeys-agent.mjs',
    banner: {
      js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
    },
    logLevel: 'warning',
  });
}
