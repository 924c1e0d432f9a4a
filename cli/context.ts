import type { Command } from 'commander';
import { type Connection, connection, requireToken } from './client.js';

/** What a command needs from the process, passed in so tests can run the CLI in-process. */
export interface CliIo {
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
}

export interface GlobalOptions {
  addr?: string;
  caCert?: string;
  clientCert?: string;
  clientKey?: string;
}

/** The connection for an admin command, from the root program's options. */
export function adminConnection(cmd: Command, io: CliIo): Connection {
  requireToken(io.env);
  return connection(cmd.optsWithGlobals<GlobalOptions>(), io.env);
}

export function printJson(io: CliIo, value: unknown): void {
  io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** A plain aligned table; empty cells show as "-". */
export function printTable(io: CliIo, columns: string[], rows: string[][]): void {
  const cells = [columns, ...rows.map((r) => r.map((c) => (c === '' ? '-' : c)))];
  const widths = columns.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  for (const row of cells) {
    const line = row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
    io.stdout.write(`${line}\n`);
  }
}

export const isoTime = (d: Date | undefined): string => (d === undefined ? '' : d.toISOString());

/** Collects a repeatable option into an array. */
export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];
