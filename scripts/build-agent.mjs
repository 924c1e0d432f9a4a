// Bundles the agent into one file that runs with Node alone, for copying into sandbox images.
// Minified CommonJS: Node compiles it faster than an ES module of the same size. grpc-js loads
// @grpc/proto-loader only for its channelz and ORCA services, which the agent never serves, so
// it stays out of the file. node-pty is native: loaded when installed beside the agent.
import { build } from 'esbuild';

await build({
  entryPoints: ['agent/main.ts'],
  bundle: true,
  minify: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  external: ['@grpc/proto-loader', '@lydell/node-pty'],
  outfile: 'dist/runkeys-agent.cjs',
  legalComments: 'none',
  logLevel: 'warning',
});
