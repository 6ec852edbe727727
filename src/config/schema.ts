// The configuration file's schema. Keys are exactly those of shoal.yaml
// (snake_case), every section is strict (unknown keys are errors) and has
// defaults, so `{}` is a complete configuration. Paths stay as written here;
// load.ts resolves them against the config file's directory.
import { join } from 'node:path';
import { isIP } from 'node:net';
import { z } from 'zod';

/** SASL mechanisms offered by default, strongest first. */
export const DEFAULT_SASL_MECHANISMS = [
  'SCRAM-SHA-512-PLUS',
  'SCRAM-SHA-256-PLUS',
  'SCRAM-SHA-1-PLUS',
  'SCRAM-SHA-512',
  'SCRAM-SHA-256',
  'SCRAM-SHA-1',
  'PLAIN',
] as const;

/** Every mechanism name the configuration accepts (some are implemented by later modules). */
export const SASL_MECHANISMS = [...DEFAULT_SASL_MECHANISMS, 'X-OAUTH2', 'OAUTHBEARER', 'CRAM-MD5', 'DIGEST-MD5'] as const;
export type SaslMechanismName = (typeof SASL_MECHANISMS)[number];

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** RFC 6120 §13.12: the smallest stanza size limit a server may impose. */
export const MIN_STANZA_BYTES = 10000;

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** A YAML key written with no value (`tls:`) parses as null; for a section that means "present, all defaults". */
const nullToEmpty = (v: unknown): unknown => (v === null ? {} : v);

function section<S extends z.core.$ZodLooseShape>(shape: S) {
  return z.preprocess(nullToEmpty, z.strictObject(shape)).prefault({});
}

function unique<T>(what: string) {
  return (values: T[], ctx: z.core.$RefinementCtx<T[]>): void => {
    const seen = new Set<T>();
    values.forEach((v, i) => {
      if (seen.has(v)) ctx.addIssue({ code: 'custom', path: [i], message: `duplicate ${what} ${String(v)}`, input: v });
      seen.add(v);
    });
  };
}

/** Seconds; fractions allowed (tests use short timeouts). */
const seconds = (def: number) => z.number().positive().default(def);

// RFC 7622 §3.2: domainparts compare case-insensitively and a trailing dot is not
// part of the name, so both are normalised away here once.
const host = z
  .string()
  .transform((s) => s.toLowerCase().replace(/\.$/, ''))
  .pipe(
    z
      .string()
      .min(1, 'must not be empty')
      .refine((s) => !/[\s@/]/.test(s), 'not a domain name'),
  );

/**
 * A PostgreSQL schema name that needs no escaping in a connection's options or in SQL: a plain
 * identifier already in the lowercase PostgreSQL folds names to, at most 63 bytes (NAMEDATALEN - 1),
 * and not beginning with pg_, which CREATE SCHEMA reserves for system schemas.
 */
export const POSTGRES_SCHEMA_NAME = /^(?!pg_)[a-z_][a-z0-9_]{0,62}$/;

const sqliteStorage = z.strictObject({
  driver: z.literal('sqlite'),
  /** Defaults to <data_dir>/shoal.sqlite. */
  path: z.string().min(1).optional(),
  /** Seconds a statement waits for another process's lock on the file before it fails. */
  busy_timeout: z.number().min(0).default(5),
});

const postgresStorage = z.strictObject({
  driver: z.literal('postgres'),
  /** libpq connection URI: postgresql://user[:password]@host[:port]/database[?sslmode=...]. */
  url: z
    .string()
    .min(1)
    .refine((s) => /^postgres(ql)?:\/\//.test(s), 'expected a postgresql:// URL'),
  /** Connections the server keeps open at most. */
  pool: z.number().int().min(1).max(1000).default(10),
  /**
   * A PostgreSQL schema of this server's own in the database (created if missing; the tables and
   * migrations live in it): several servers, or test runs, then share one database.
   */
  schema: z
    .string()
    .regex(POSTGRES_SCHEMA_NAME, 'a lowercase name of letters, digits and _ (at most 63, not starting with a digit or pg_)')
    .optional(),
});

// A discriminated union: `driver` may be left out and then means sqlite.
const storage = z
  .preprocess((v) => {
    const obj = nullToEmpty(v);
    return isPlainObject(obj) && !('driver' in obj) ? { driver: 'sqlite', ...obj } : obj;
  }, z.discriminatedUnion('driver', [sqliteStorage, postgresStorage]))
  .prefault({});

const tls = z.preprocess(
  nullToEmpty,
  z
    .strictObject({
      cert: z.string().min(1).optional(),
      key: z.string().min(1).optional(),
    })
    .refine((t) => (t.cert === undefined) === (t.key === undefined), {
      message: 'cert and key must be given together (omit both for a generated self-signed certificate)',
    }),
);

const port = (def: number) => z.number().int().min(0).max(65535).default(def);

/** An origin as browsers send it (RFC 6454 §6.1): scheme, host and optional port, nothing else; or '*'. */
const origin = z.string().regex(/^(\*|https?:\/\/[^/\s]+)$/, "an origin such as https://chat.example.com, or '*'");

/** The HTTP side (WebSocket, BOSH, discovery); absent in a config file: no plain-HTTP listener. */
const httpSettings = z.preprocess(
  nullToEmpty,
  z.strictObject({
    host: z.string().min(1).default('127.0.0.1'),
    port: port(5280),
    /** false: no plain-HTTP listener, the settings below still apply to https. */
    listen: z.boolean().default(true),
    /** Origins whose pages may use BOSH and WebSocket (CORS, WebSocket Origin check); '*': any. */
    allowed_origins: z.array(origin).default(['*']),
    /** Reverse proxies (IP addresses) whose X-Forwarded-For and X-Forwarded-Proto are believed. */
    trust_proxy: z.array(z.string().refine((a) => isIP(a) !== 0, 'an IP address')).default([]),
    /** The base URL clients use (XEP-0156 discovery); default: the URL of the request. */
    public_url: z.url({ protocol: /^https?$/ }).optional(),
    /** Seconds between WebSocket pings; a connection that answered nothing since the last one is dropped. */
    websocket_ping: seconds(30),
    /** Serve the Converse.js web client at / (from the converse.js package's files). */
    web_client: z.boolean().default(true),
    /** XEP-0124 limits. */
    bosh: section({
      max_wait: z.number().int().min(1).default(60),
      max_hold: z.number().int().min(0).default(1),
      inactivity: z.number().int().min(1).default(60),
      max_pause: z.number().int().min(0).default(300),
      polling: z.number().min(0).default(2),
    }),
  }),
);

const mechanism = z.preprocess((v) => (typeof v === 'string' ? v.toUpperCase() : v), z.enum(SASL_MECHANISMS));

/** A token bucket (sasl.rate_limit): `burst` failures at once, refilled at `per_minute`. */
const bucket = (burst: number, perMinute: number) =>
  section({
    burst: z.number().int().min(1).default(burst),
    per_minute: z.number().positive().default(perMinute),
  });

/** Traffic shaping of what one peer sends (stream/shaper.ts); 0 per second: no limit. */
const rate = (bytesPerSecond: number, burstBytes: number, stanzasPerSecond: number, burstStanzas: number) =>
  section({
    bytes_per_second: z.number().int().min(0).default(bytesPerSecond),
    burst_bytes: z.number().int().min(1).default(burstBytes),
    stanzas_per_second: z.number().min(0).default(stanzasPerSecond),
    burst_stanzas: z.number().int().min(1).default(burstStanzas),
  });

/** Algorithms accepted for JWT access tokens (RFC 7518 §3.1). */
export const JWT_ALGORITHMS = ['HS256', 'RS256', 'ES256'] as const;

const jwtSettings = z
  .strictObject({
    /** Defaults to HS256 with `secret`/`secret_file`, else RS256 and ES256. */
    algorithms: z.array(z.enum(JWT_ALGORITHMS)).min(1).superRefine(unique('algorithm')).optional(),
    /** HS256 shared secret (RFC 7518 §3.2 asks for a key at least as long as the hash: 32 bytes). */
    secret: z.string().min(32, 'an HS256 secret must be at least 32 characters').optional(),
    /** A file holding the HS256 secret (trailing newline ignored). */
    secret_file: z.string().min(1).optional(),
    /** PEM public key (SPKI) or certificate for RS256/ES256. */
    public_key: z.string().min(1).optional(),
    /** A JWKS file (RFC 7517 §5) on disk; the token's 'kid' picks the key. */
    jwks: z.string().min(1).optional(),
    /** Required 'iss' (RFC 7519 §4.1.1), when set. */
    issuer: z.string().min(1).optional(),
    /** Required 'aud' (RFC 7519 §4.1.3), when set. */
    audience: z.string().min(1).optional(),
    /** The claim naming the account: a bare JID of a served host, or a localpart. */
    claim: z.string().min(1).default('sub'),
    /** Seconds of clock skew allowed for 'exp' and 'nbf'. */
    clock_tolerance: z.number().min(0).default(30),
  })
  .refine((j) => [j.secret, j.secret_file, j.public_key, j.jwks].filter((k) => k !== undefined).length === 1, {
    message: 'give exactly one of secret, secret_file, public_key, jwks',
  });

const tokens = z
  .preprocess(
    // `tokens: local` / `tokens: jwt` as shorthand for the verifier.
    (v) => (typeof v === 'string' ? { verifier: v } : nullToEmpty(v)),
    z
      .strictObject({
        /** local: opaque tokens from `shoal token issue`; jwt: JWTs signed by an identity provider. */
        verifier: z.enum(['local', 'jwt']).default('local'),
        /** Lifetime of `shoal token issue` tokens without --ttl, in seconds. */
        default_ttl: seconds(3600),
        /** A scope every token must carry (RFC 6749 §3.3); also sent in OAUTHBEARER errors. */
        required_scope: z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, 'one scope token').optional(),
        /** OAUTHBEARER error 'openid-configuration' URL (RFC 7628 §3.2.2). */
        openid_configuration: z.url({ protocol: /^https$/ }).optional(),
        jwt: jwtSettings.optional(),
      })
      .refine((t) => t.verifier !== 'jwt' || t.jwt !== undefined, { message: 'tokens.verifier jwt needs a jwt section', path: ['jwt'] }),
  )
  .prefault({});

const auth = z
  .preprocess(
    nullToEmpty,
    z
      .strictObject({
        /** internal: the accounts in storage; http: an HTTP endpoint checks passwords and tokens. */
        backend: z.enum(['internal', 'http']).default('internal'),
        http: z
          .strictObject({
            url: z.url({ protocol: /^https?$/ }),
            timeout: seconds(5),
            /** Sent as "Authorization: Bearer <secret>" so the endpoint can tell the server from others. */
            secret: z.string().min(1).optional(),
          })
          .optional(),
      })
      .refine((a) => a.backend !== 'http' || a.http !== undefined, { message: 'auth.backend http needs auth.http.url', path: ['http'] }),
  )
  .prefault({});

/** XEP-0114 external components: where they connect, and the domain and secret of each. */
const components = z.preprocess(
  nullToEmpty,
  z.strictObject({
    listen: section({
      host: z.string().min(1).default('127.0.0.1'),
      port: z.number().int().min(0).max(65535).default(5347),
    }),
    services: z
      .array(
        z.strictObject({
          domain: host,
          /** The shared secret of XEP-0114 §3's handshake. */
          secret: z.string().min(8, 'a component secret must be at least 8 characters'),
        }),
      )
      .default([])
      .superRefine((list, ctx) => unique<string>('component domain')(list.map((c) => c.domain), ctx as unknown as z.core.$RefinementCtx<string[]>)),
  }),
);

export const configSchema = z
  .strictObject({
    hosts: z
      .array(host)
      .min(1, 'at least one host is required')
      .superRefine(unique('host'))
      .default(['localhost']),
    c2s: section({
      host: z.string().min(1).default('0.0.0.0'),
      // 0 asks the OS for a free port (used by tests).
      port: z.number().int().min(0).max(65535).default(5222),
    }),
    data_dir: z.string().min(1).default('./data'),
    storage,
    /**
     * Present: this server is one node of a cluster routed through Redis (src/router/cluster.ts):
     * the nodes share the session registry, deliver to each other's sessions and take over from a
     * node that stops answering. Every node needs the same storage (PostgreSQL).
     */
    cluster: z
      .strictObject({
        /** This node's name, unique in the cluster. */
        node: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'expected lowercase letters, digits, - and _ (at most 63)'),
        /** redis://[user:password@]host:port/db */
        redis: z.string().refine((s) => /^rediss?:\/\//.test(s), 'expected a redis:// URL'),
        /** Prefix of every Redis key and channel: several clusters can share one Redis. */
        namespace: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/).default('shoal'),
        /** How often a node tells Redis it is alive. */
        heartbeat_ms: z.number().int().min(50).max(60_000).default(1000),
        /** A node not heard of for this long is dead: the others end its sessions and take its rooms. */
        dead_after_ms: z.number().int().min(150).max(600_000).default(5000),
      })
      .refine((c) => c.dead_after_ms >= 3 * c.heartbeat_ms, { message: 'dead_after_ms must be at least 3 heartbeats', path: ['dead_after_ms'] })
      .optional(),
    /** Present: STARTTLS is offered and required. Absent: no TLS. */
    tls: tls.optional(),
    limits: section({
      max_stanza_bytes: z.number().int().min(MIN_STANZA_BYTES).default(262144),
      /** Client connections one address (IPv6: one /64) may hold at once; 0: no limit. */
      max_connections_per_ip: z.number().int().min(0).default(100),
      /** RFC 6121 §4.6: JIDs one session may send directed presence to (outside its subscribers) at once. */
      max_directed_presence: z.number().int().min(1).default(1000),
      /** Resources one account may have bound at once; the next bind gets resource-constraint (RFC 6120 §7.6.2.1). */
      max_sessions_per_account: z.number().int().min(1).default(10),
      /** Subscription requests one user may send to JIDs it has no subscription with; beyond: policy-violation. */
      subscription_requests: bucket(20, 1),
      /**
       * Requests from one JID to one user shown live while the user has not answered: more are
       * recorded (delivered at the next login, once), not pushed again (RFC 6121 §3.1.3).
       */
      subscription_repeats: bucket(1, 0.1),
      /**
       * What one connection, one account (all its connections together) and one component may
       * send. Over the rate, reading from the socket pauses (TCP backpressure); a peer that keeps
       * it paused for longer than abuse_seconds (decaying with a two-minute half-life) is cut off
       * with policy-violation.
       */
      rate: section({
        client: rate(32 * 1024, 512 * 1024, 100, 500),
        account: rate(64 * 1024, 1024 * 1024, 200, 1000),
        component: rate(0, 1, 0, 1),
        abuse_seconds: z.number().positive().default(60),
      }),
    }),
    timeouts: section({
      pre_auth: seconds(30),
      ping_after: seconds(300),
      ping_timeout: seconds(60),
    }),
    sasl: section({
      mechanisms: z
        .array(mechanism)
        .min(1, 'at least one mechanism is required')
        .superRefine(unique('mechanism'))
        .default([...DEFAULT_SASL_MECHANISMS]),
      max_attempts: z.number().int().min(1).default(5),
      allow_plain_without_tls: z.boolean().default(false),
      /**
       * Clients that only know the tls-unique channel binding (absent from TLS 1.3): after asking for
       * it on a stream, their SCRAM without binding ('y' flag) is accepted instead of refused as a
       * downgrade (RFC 5802 §6). Off by default: it gives up that protection for such clients.
       */
      tls_unique_fallback: z.boolean().default(false),
      /** Failed authentications, per account and per client address (token buckets). */
      rate_limit: section({
        enabled: z.boolean().default(true),
        account: bucket(20, 4),
        address: bucket(40, 20),
      }),
    }),
    tokens,
    auth,
    bind: section({
      resource: z.enum(['generate', 'client']).default('generate'),
    }),
    roster: section({
      versioning: z.enum(['diff', 'full']).default('diff'),
      /** Items one roster may hold (pending requests included); a roster set beyond: not-allowed (RFC 6121 §2.3.3). */
      max_items: z.number().int().min(1).default(1000),
    }),
    offline: section({
      /** XEP-0160 §2: beyond this many stored messages a new one is bounced with service-unavailable; 0 stores none. */
      max_per_user: z.number().int().min(0).default(1000),
      /** Bytes of stored messages per user (each counted as its XML). */
      max_bytes_per_user: z.number().int().min(0).default(10 * 1024 * 1024),
      /** Messages one sender who is not a contact (subscription from/both) may have stored for a user. */
      max_per_stranger: z.number().int().min(0).default(100),
      /** The share of both per-user limits that non-contacts together may use; the rest is kept for contacts. */
      strangers_share: z.number().min(0).max(1).default(0.5),
    }),
    /** XEP-0198 stream management. */
    stream_management: section({
      /** Offer XEP-0198 at all (false: no <sm/> feature, clients run without acks or resumption). */
      enabled: z.boolean().default(true),
      /** Seconds a session whose connection dropped is kept for the client to resume it; 0: no resumption. */
      resume_timeout: z.number().int().min(0).default(300),
      /** Stanzas sent to a client and not yet acknowledged; beyond, they go to offline storage and the stream ends (policy-violation). */
      max_unacked: z.number().int().min(1).default(1000),
      /** The server asks the client for an ack (<r/>) once this many stanzas are unacknowledged. */
      request_every: z.number().int().min(1).default(5),
      /** XEP-0198 §5 'location': where the client should reconnect to resume (host:port); absent: anywhere. */
      location: z.string().min(1).optional(),
    }),
    push: section({
      /**
       * XEP-0357 §9: a body in a notification goes through the app server and the push provider;
       * only message-count and last-message-sender are sent unless this is on.
       */
      include_body: z.boolean().default(false),
      /** Push registrations (service JID and node) one account may hold; one more is refused with policy-violation. */
      max_per_account: z.number().int().min(0).default(10),
      /** Seconds between two notifications to one registration; what arrives meanwhile goes in the next one. 0: no pause. */
      min_interval: z.number().min(0).default(2),
      /** Seconds to wait for the push service's answer to a notification (no answer does not disable it). */
      timeout: seconds(30),
    }),
    /** XEP-0313 message archives, one per account. */
    mam: section({
      /** Archive messages and answer archive queries at all. */
      enabled: z.boolean().default(true),
      /** XEP-0441 default for accounts that set no preference: always, never, or roster (contacts only). */
      default: z.enum(['always', 'never', 'roster']).default('always'),
      /** Messages older than this many days are deleted by the retention job; absent: kept. */
      max_age_days: z.number().positive().optional(),
      /** An archive keeps at most this many messages (the newest) after each retention pass; absent: no limit. */
      max_per_user: z.number().int().min(0).optional(),
      /** The largest page one query is sent, whatever <max/> asks (XEP-0313 §4.3.1). */
      max_page: z.number().int().min(1).max(1000).default(250),
      /** Seconds between two retention passes. */
      retention_interval: seconds(3600),
    }),
    /** XEP-0045 multi-user chat: one service per host; false turns it off. */
    muc: z
      .preprocess(
        (v) => (v === null || v === true ? {} : v),
        z.union([
          z.literal(false),
          z.strictObject({
            /** The service's domain; {host} stands for each entry of hosts. */
            domain: z
              .string()
              .default('conference.{host}')
              .transform((s) => s.toLowerCase().replace(/\.$/, ''))
              .pipe(
                z
                  .string()
                  .min(1, 'must not be empty')
                  .refine((s) => !/[\s@/]/.test(s), 'not a domain name'),
              ),
            /** Rooms one user may own at once; one more is refused (not-allowed). */
            max_rooms_per_user: z.number().int().min(0).default(100),
            /** Occupants of one room (an owner may set a lower number per room); beyond, service-unavailable (XEP-0045 §7.2.10). */
            max_occupants: z.number().int().min(1).default(1000),
            /** Messages each room keeps in memory for the history sent on entry (XEP-0045 §7.2.14). */
            max_history: z.number().int().min(0).default(50),
          }),
        ]),
      )
      .prefault({}),
    /**
     * XEP-0363 HTTP file upload: one service per host, on whenever an http or https listener is
     * on; false turns it off.
     */
    upload: z
      .preprocess(
        (v) => (v === null || v === true ? {} : v),
        z.union([
          z.literal(false),
          z.strictObject({
            /** The service's domain; {host} stands for each entry of hosts. */
            domain: z
              .string()
              .default('upload.{host}')
              .transform((s) => s.toLowerCase().replace(/\.$/, ''))
              .pipe(
                z
                  .string()
                  .min(1, 'must not be empty')
                  .refine((s) => !/[\s@/]/.test(s), 'not a domain name'),
              ),
            /** The largest file (bytes); a larger slot request gets file-too-large (XEP-0363 §5). */
            max_file_bytes: z.number().int().min(1).default(100 * 1024 * 1024),
            /** All stored files of one user together (bytes); beyond, resource-constraint. */
            quota_bytes: z.number().int().min(1).default(1024 * 1024 * 1024),
            /** Files are deleted this many days after their upload (fractions allowed). */
            expire_after_days: z.number().positive().default(30),
            /** Where the files are kept; default <data_dir>/uploads. */
            path: z.string().min(1).optional(),
            /** Seconds a slot's PUT URL stays valid. */
            put_expiry: seconds(300),
            /** Seconds between two passes of the job that deletes expired files. */
            cleanup_interval: seconds(3600),
          }),
        ]),
      )
      .prefault({}),
    vcard: section({
      /** XEP-0054 vCards larger than this (serialised, in bytes) are refused. */
      max_bytes: z.number().int().min(1).default(65536),
    }),
    /** XEP-0163 personal eventing (PEP), XEP-0049 private XML storage. */
    pep: section({
      /** Nodes one account may have; one more is refused with policy-violation. */
      max_nodes: z.number().int().min(1).default(100),
      /** The largest pubsub#max_items of a node (what 'max' means). */
      max_items: z.number().int().min(1).default(256),
      /** One item's payload (serialised, in bytes); a larger one is refused with not-acceptable. */
      max_item_bytes: z.number().int().min(1).default(256 * 1024),
      /** All items of one account together (bytes); beyond, a publish is refused with policy-violation. */
      max_bytes_per_account: z.number().int().min(1).default(16 * 1024 * 1024),
      /** XEP-0049: one stored element (serialised, in bytes); larger is refused with not-acceptable. */
      private_max_bytes: z.number().int().min(1).default(64 * 1024),
      /** XEP-0049: stored elements (one per name and namespace) per account; one more is policy-violation. */
      private_max_entries: z.number().int().min(1).default(100),
      /** XEP-0115: verified disco#info answers kept, by hash (least recently used dropped first). */
      caps_cache_size: z.number().int().min(1).default(1000),
      /** Seconds to wait for a client's disco#info answer about its caps. */
      caps_timeout: seconds(10),
    }),
    log: section({
      level: z.enum(LOG_LEVELS).default('info'),
      format: z.enum(['auto', 'json', 'pretty']).default('auto'),
    }),
    /** Absent: no component listener. */
    components: components.optional(),
    /** HTTP listener: WebSocket (RFC 7395), BOSH (XEP-0206), host-meta (XEP-0156). Absent in a file: off. */
    http: httpSettings.optional(),
    /** The same over TLS with the tls certificate. Absent: off. */
    https: z.preprocess(nullToEmpty, z.strictObject({ host: z.string().min(1).default('0.0.0.0'), port: port(5281) })).optional(),
    /** XEP-0215: STUN servers to tell clients about (besides the TURN server). */
    stun: z.array(z.strictObject({ host: z.string().min(1), port: z.number().int().min(1).max(65535).default(3478) })).optional(),
    /** XEP-0215: a TURN server sharing a secret with this server (coturn's use-auth-secret). Absent: none. */
    turn: z
      .strictObject({
        host: z.string().min(1),
        port: z.number().int().min(1).max(65535).default(3478),
        /** TURN over TLS ('turns'), when the TURN server offers it. */
        tls_port: z.number().int().min(1).max(65535).optional(),
        /** coturn's static-auth-secret. */
        secret: z.string().min(16, 'a TURN secret must be at least 16 characters'),
        /** Seconds the credentials given to a client work. */
        ttl: z.number().int().min(60).default(86400),
        transports: z.array(z.enum(['udp', 'tcp'])).min(1).superRefine(unique('transport')).default(['udp', 'tcp']),
        /** Also list it as a STUN server. */
        stun: z.boolean().default(true),
      })
      .optional(),
    /** /metrics on the HTTP listeners (Prometheus text format). */
    metrics: section({
      enabled: z.boolean().default(true),
      /** Client addresses that may read /metrics. */
      allowed_ips: z.array(z.string().refine((a) => isIP(a) !== 0, 'an IP address')).default(['127.0.0.1', '::1']),
      /**
       * How often the event-loop delay is sampled (ms). Every sample wakes the process, idle or
       * not: prom-client's default of 10 ms is 100 wake-ups a second, about 1% of a core here.
       */
      event_loop_resolution_ms: z.number().int().min(1).max(10_000).default(100),
    }),
    /** XEP-0368 direct TLS for clients. Absent: off. */
    c2s_direct_tls: z.preprocess(nullToEmpty, z.strictObject({ host: z.string().min(1).default('0.0.0.0'), port: port(5223) })).optional(),
  })
  .superRefine((c, ctx) => {
    if (c.muc !== false) {
      const pattern = c.muc.domain;
      if (c.hosts.length > 1 && !pattern.includes('{host}')) {
        ctx.addIssue({ code: 'custom', path: ['muc', 'domain'], message: 'with more than one host, the domain must contain {host}', input: pattern });
      }
      for (const h of c.hosts) {
        const d = pattern.split('{host}').join(h);
        if (c.hosts.includes(d)) ctx.addIssue({ code: 'custom', path: ['muc', 'domain'], message: `${d} is an account host, not a service domain`, input: pattern });
        if (c.components?.services.some((s) => s.domain === d)) {
          ctx.addIssue({ code: 'custom', path: ['muc', 'domain'], message: `${d} is also a component's domain`, input: pattern });
        }
      }
    }
    if (c.upload !== false) {
      const pattern = c.upload.domain;
      if (c.hosts.length > 1 && !pattern.includes('{host}')) {
        ctx.addIssue({ code: 'custom', path: ['upload', 'domain'], message: 'with more than one host, the domain must contain {host}', input: pattern });
      }
      for (const h of c.hosts) {
        const d = pattern.split('{host}').join(h);
        if (c.hosts.includes(d)) ctx.addIssue({ code: 'custom', path: ['upload', 'domain'], message: `${d} is an account host, not a service domain`, input: pattern });
        if (c.muc !== false && c.muc.domain.split('{host}').join(h) === d) {
          ctx.addIssue({ code: 'custom', path: ['upload', 'domain'], message: `${d} is also the muc domain`, input: pattern });
        }
        if (c.components?.services.some((s) => s.domain === d)) {
          ctx.addIssue({ code: 'custom', path: ['upload', 'domain'], message: `${d} is also a component's domain`, input: pattern });
        }
      }
    }
    if (c.cluster !== undefined && c.storage.driver !== 'postgres') {
      ctx.addIssue({ code: 'custom', path: ['cluster'], message: 'a cluster needs storage every node shares: storage.driver postgres', input: c.cluster });
    }
    for (const key of ['https', 'c2s_direct_tls'] as const) {
      if (c[key] !== undefined && c.tls === undefined) ctx.addIssue({ code: 'custom', path: [key], message: `${key} needs a tls section`, input: c[key] });
    }
    c.components?.services.forEach((s, i) => {
      if (c.hosts.includes(s.domain)) {
        ctx.addIssue({ code: 'custom', path: ['components', 'services', i, 'domain'], message: `${s.domain} is an account host, not a component domain`, input: s.domain });
      }
    });
  })
  .transform((c) => ({
    ...c,
    storage: c.storage.driver === 'sqlite' ? { ...c.storage, path: c.storage.path ?? join(c.data_dir, 'shoal.sqlite') } : c.storage,
  }));

/** The validated configuration, keys as in the YAML file. */
export type Config = z.output<typeof configSchema>;
export type StorageConfig = Config['storage'];
export type TlsConfig = NonNullable<Config['tls']>;
export type TokensConfig = Config['tokens'];
export type JwtConfig = NonNullable<TokensConfig['jwt']>;
export type AuthConfig = Config['auth'];
export type RateLimitConfig = Config['sasl']['rate_limit'];
export type ComponentsConfig = NonNullable<Config['components']>;
export type UploadConfig = Exclude<Config['upload'], false>;
export type HttpConfig = NonNullable<Config['http']>;
export type ClusterConfig = NonNullable<Config['cluster']>;
