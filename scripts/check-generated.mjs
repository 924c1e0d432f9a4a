// Regenerates the protobuf stubs and fails when the committed ones differ: generated code is
// never edited by hand.
import { execFileSync } from 'node:child_process';

const run = (cmd, args) => execFileSync(cmd, args, { stdio: 'inherit' });
run('npx', ['--no-install', 'buf', 'lint']);
run('npx', ['--no-install', 'buf', 'generate']);
const changed = execFileSync('git', ['status', '--porcelain', '--', 'proto/gen'], {
  encoding: 'utf8',
});
if (changed.trim() !== '') {
  process.stderr.write(`generated code differs from proto/:\n${changed}\nrun: npm run proto\n`);
  process.exit(1);
}
