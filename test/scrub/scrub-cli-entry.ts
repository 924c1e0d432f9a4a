// A tiny entry for the CLI tests: the lead's cli/main.ts wires registerScrubCommand the same way.
import { Command } from 'commander';
import { registerScrubCommand } from '../../cli/commands/scrub.js';

const program = new Command('runkeys');
registerScrubCommand(program);
await program.parseAsync(process.argv);
