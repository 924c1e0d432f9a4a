import { type Logger, pino } from 'pino';

/** The agent logs JSON lines to stderr, synchronously, so nothing is lost when it exits. */
export function agentLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    { name: 'runkeys-agent', level },
    destination ?? pino.destination({ fd: 2, sync: true }),
  );
}
