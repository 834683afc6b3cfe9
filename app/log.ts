import pino, { type Logger } from 'pino';

export type { Logger };

/** Credentials in URLs (`scheme://user:password@host`) are masked wherever they appear in a message. */
export function redactUrlCredentials(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)([^:/@\s]*):([^@\s/]+)@/gi, '$1$2:***@');
}

export function createLogger(opts: { level: string; name?: string; destination?: pino.DestinationStream }): Logger {
  return pino(
    {
      level: opts.level,
      name: opts.name,
      base: { service: 'easeemail', role: opts.name },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: [
          'req.headers.authorization',
          'req.headers.cookie',
          'headers.authorization',
          '*.password',
          '*.pass',
          '*.secret',
          '*.apiKey',
          '*.key',
          'config.databaseUrl',
          'config.redisUrl',
          'config.smtpUrl',
          'config.encryptionKey',
          'config.bootstrapApiKey',
        ],
        censor: '[redacted]',
      },
      serializers: {
        err: (err: unknown) => {
          const s = pino.stdSerializers.err(err as Error);
          if (s?.message) s.message = redactUrlCredentials(s.message);
          if (s?.stack) s.stack = redactUrlCredentials(s.stack);
          return s;
        },
      },
      hooks: {
        // Messages are formatted by us, but may quote driver errors that echo a connection string.
        logMethod(args, method) {
          for (let i = 0; i < args.length; i++) if (typeof args[i] === 'string') args[i] = redactUrlCredentials(args[i] as string);
          return method.apply(this, args as Parameters<typeof method>);
        },
      },
    },
    opts.destination,
  );
}
