// Table types for Kysely. Column names are snake_case as stored; the stores map
// them to the camelCase interfaces of ../types.ts. Types are chosen to exist on
// both SQLite and PostgreSQL: booleans are 0/1 integers (better-sqlite3 cannot
// bind JS booleans), timestamps ISO 8601 text, binary data Buffers (BLOB/bytea).

export interface AccountsTable {
  host: string;
  username: string;
  /** ISO 8601, UTC. */
  created_at: string;
}

/** RFC 5802 §3: one row per (account, hash function). */
export interface ScramCredentialsTable {
  host: string;
  username: string;
  /** 'SHA-1' | 'SHA-256' | 'SHA-512' */
  hash: string;
  salt: Buffer;
  iterations: number;
  stored_key: Buffer;
  server_key: Buffer;
}

/** RFC 6121 §2.1.2: one contact of one user's roster. */
export interface RosterItemsTable {
  host: string;
  username: string;
  jid: string;
  name: string | null;
  /** 'none' | 'to' | 'from' | 'both' */
  subscription: string;
  ask: number;
  pending_in: number;
  approved: number;
  /** JSON array of group names. */
  groups: string;
  /** Roster version at which this item last changed. */
  version: number;
}

/** RFC 6121 §2.6: the current roster version of each user that has one. */
export interface RosterVersionsTable {
  host: string;
  username: string;
  version: number;
}

/**
 * RFC 6121 §2.6.3: the log that roster pushes since a client's cached version
 * are computed from. One row per version; only the last few hundred are kept.
 */
export interface RosterChangesTable {
  host: string;
  username: string;
  version: number;
  jid: string;
  removed: number;
}

/** XEP-0054: one vCard per account. */
export interface VCardsTable {
  host: string;
  username: string;
  /** The <vCard/> element as XML text. */
  vcard: string;
  /** XEP-0153 SHA-1 (hex) of the photo, computed when the vCard is stored. */
  avatar_hash: string | null;
  /** ISO 8601, UTC. */
  updated_at: string;
}

/** XEP-0191: one blocked JID (canonical string) of one user. */
export interface BlocklistTable {
  host: string;
  username: string;
  jid: string;
}

/** RFC 2195 / RFC 2831 secrets, derived from the password when it is set (LegacySaslSecret). */
export interface LegacySaslSecretsTable {
  host: string;
  username: string;
  /** 'CRAM-MD5' | 'DIGEST-MD5' */
  mechanism: string;
  /** DIGEST-MD5 realm; '' for CRAM-MD5. */
  realm: string;
  variant: string;
  secret: Buffer;
}

/** Access tokens of `tokens: local`: the SHA-256 of the token text, never the text. */
export interface AuthTokensTable {
  id: string;
  host: string;
  username: string;
  token_hash: Buffer;
  /** Space-separated scope values (RFC 6749 §3.3). */
  scope: string;
  /** ISO 8601, UTC. */
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
}

export interface Database {
  accounts: AccountsTable;
  scram_credentials: ScramCredentialsTable;
  roster_items: RosterItemsTable;
  roster_versions: RosterVersionsTable;
  roster_changes: RosterChangesTable;
  vcards: VCardsTable;
  blocklist: BlocklistTable;
  legacy_sasl_secrets: LegacySaslSecretsTable;
  auth_tokens: AuthTokensTable;
}

