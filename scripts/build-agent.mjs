// Bundles the agent into one file that runs with Node alone, for copying into sandbox images.
// 1. esbuild: minified CommonJS. grpc-js loads @grpc/proto-loader only for its channelz and
//    ORCA services, which the agent never serves, so it stays out; node-pty is native and is
//    loaded when it is installed beside the agent.
// 2. V8 code cache: the bundle is compiled and run once here (with --help), and the code V8
//    compiled is stored in the output beside the source. At start the agent hands it back to
//    V8, which then skips parsing and compiling that code. A cache from another Node version
//    or other V8 flags is rejected by V8, and the source is compiled as usual.
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { build } from 'esbuild';

const BODY = 'dist/agent-body.cjs';
const OUT = 'dist/runkeys-agent.cjs';
const HEAD = '(function (exports, require, module, __filename, __dirname) {';
const TAIL = '\n})';

// 1.
await build({
  entryPoints: ['agent/main.ts'],
  bundle: true,
  minify: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  external: ['@grpc/proto-loader', '@lydell/node-pty'],
  outfile: BODY,
  legalComments: 'none',
  logLevel: 'warning',
});
const wrapped = HEAD + readFileSync(BODY, 'utf8') + TAIL;
writeFileSync(BODY, wrapped);

// 2.
const cacheFile = `${BODY}.cache`;
const warmUp = `
const vm = require('node:vm');
const fs = require('node:fs');
const script = new vm.Script(fs.readFileSync(process.argv[1], 'utf8'), { filename: 'agent' });
process.argv = [process.argv[0], 'runkeys-agent.cjs', '--help'];
process.stdout.write = () => true;
process.on('exit', () => fs.writeFileSync(process.env.CACHE_OUT, script.createCachedData()));
const m = { exports: {} };
script.runInThisContext()(m.exports, require, m, 'runkeys-agent.cjs', '.');
`;
execFileSync(process.execPath, ['-e', warmUp, BODY], {
  env: { ...process.env, CACHE_OUT: cacheFile },
  stdio: ['ignore', 'ignore', 'inherit'],
});
const cache = readFileSync(cacheFile);

const loader = `'use strict';
// runkeys agent, one file: the bundled source and V8's compiled code for it (see
// scripts/build-agent.mjs in the runkeys repository).
const vm = require('node:vm');
const script = new vm.Script(${JSON.stringify(wrapped)}, {
  filename: __filename,
  cachedData: Buffer.from(${JSON.stringify(cache.toString('base64'))}, 'base64'),
});
script.runInThisContext()(exports, require, module, __filename, __dirname);
`;
writeFileSync(OUT, loader);
rmSync(BODY);
rmSync(cacheFile);
