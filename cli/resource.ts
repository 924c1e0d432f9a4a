import type { Command } from 'commander';
import { type CliIo, printJson, printTable } from './context.js';
import { allPages } from './pages.js';

/** How one kind of collection-scoped resource is read and shown. */
export interface ResourceView<T> {
  /** The positional argument's name in help, e.g. "name" or "provider". */
  key: string;
  /** What `delete` reports, e.g. "variable". */
  noun: string;
  columns: string[];
  row(item: T): string[];
  json(item: T): unknown;
  get(c: Command, collection: string, key: string): Promise<T>;
  list(c: Command, collection: string, pageToken: string): Promise<{ items: T[]; next: string }>;
  remove(c: Command, collection: string, key: string): Promise<void>;
}

interface ReadOptions {
  collection: string;
  json?: boolean;
}

/** Adds `get <key>`, `list` and `delete <key>`, each with --collection (and --json to read). */
export function addReadAndDelete<T>(cmd: Command, io: CliIo, view: ResourceView<T>): void {
  const show = (items: T[], json: boolean, one: boolean) => {
    if (json) printJson(io, one ? view.json(items[0]!) : items.map(view.json));
    else printTable(io, view.columns, items.map(view.row));
  };

  cmd
    .command(`get <${view.key}>`)
    .requiredOption('--collection <name>', 'collection')
    .option('--json', 'print JSON')
    .action(async (key: string, opts: ReadOptions, c: Command) => {
      show([await view.get(c, opts.collection, key)], opts.json === true, true);
    });

  cmd
    .command('list')
    .requiredOption('--collection <name>', 'collection')
    .option('--json', 'print JSON')
    .action(async (opts: ReadOptions, c: Command) => {
      const items = await allPages((token) => view.list(c, opts.collection, token));
      show(items, opts.json === true, false);
    });

  cmd
    .command(`delete <${view.key}>`)
    .requiredOption('--collection <name>', 'collection')
    .action(async (key: string, opts: ReadOptions, c: Command) => {
      await view.remove(c, opts.collection, key);
      io.stderr.write(`deleted ${view.noun} ${key}\n`);
    });
}
