// Structured logging with pino: JSON lines in production, pretty-printed on a TTY.
// Secrets never reach a logger: SASL payloads and passwords are not passed to it at all.
import { pino, type Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export function createLogger(opts: { level: LogLevel; format: 'auto' | 'json' | 'pretty'; destination?: number }): Logger {
  const pretty = opts.format === 'pretty' || (opts.format === 'auto' && process.stdout.isTTY === true);
  if (pretty) {
    return pino({
      level: opts.level,
      transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:standard', destination: opts.destination ?? 1 } },
    });
  }
  return pino({ level: opts.level }, pino.destination({ dest: opts.destination ?? 1, sync: false }));
}

/** A logger that drops everything (tests, library use). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
