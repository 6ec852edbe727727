// Storage interfaces, one per concern. Modules and the SASL layer only see these;
// the SQLite and PostgreSQL implementations live beside them (storage/sql/).

/** The hash functions SCRAM is defined for here (RFC 5802, RFC 7677, and SHA-512 by the same construction). */
export type ScramHash = 'SHA-1' | 'SHA-256' | 'SHA-512';
export const SCRAM_HASHES: readonly ScramHash[] = ['SHA-1', 'SHA-256', 'SHA-512'];

/** RFC 5802 §3: what a server keeps instead of the password. */
export interface ScramCredentials {
  hash: ScramHash;
  salt: Buffer;
  iterations: number;
  storedKey: Buffer;
  serverKey: Buffer;
}

export interface Account {
  /** Domain part of the account's JID (a served host). */
  host: string;
  /** Normalised localpart (RFC 7622 §3.3). */
  username: string;
  createdAt: Date;
}

/** Mechanisms whose secrets cannot be derived from SCRAM credentials, so they are kept beside them. */
export type LegacySaslMechanism = 'CRAM-MD5' | 'DIGEST-MD5';
export const LEGACY_SASL_MECHANISMS: readonly LegacySaslMechanism[] = ['CRAM-MD5', 'DIGEST-MD5'];

/**
 * A password-derived secret for CRAM-MD5 (RFC 2195) or DIGEST-MD5 (RFC 2831). Never
 * the password itself, but a password equivalent for that mechanism: whoever holds
 * it can log in with that mechanism (not with SCRAM or PLAIN).
 */
export interface LegacySaslSecret {
  mechanism: LegacySaslMechanism;
  /** DIGEST-MD5: the realm the hash is for (a served domain); CRAM-MD5: ''. */
  realm: string;
  /**
   * Which encoding of the strings went into the hash: DIGEST-MD5 'utf-8' or
   * 'iso-8859-1' (RFC 2831 §2.1.2.1), CRAM-MD5 'hmac-md5-states'.
   */
  variant: string;
  /** DIGEST-MD5: H(username:realm:password), 16 bytes; CRAM-MD5: HMAC-MD5 inner and outer states, 32 bytes. */
  secret: Buffer;
}

export interface AccountStore {
  /**
   * Creates the account with credentials for every hash (and, optionally, CRAM-MD5/DIGEST-MD5
   * secrets, in the same transaction); false when it already exists.
   */
  create(host: string, username: string, credentials: ScramCredentials[], legacy?: LegacySaslSecret[]): Promise<boolean>;
  /**
   * Replaces all credentials of an existing account; false when there is no such account.
   * CRAM-MD5/DIGEST-MD5 secrets are always replaced too (by `legacy`, or by none): a secret
   * derived from the old password must not outlive it.
   */
  setCredentials(host: string, username: string, credentials: ScramCredentials[], legacy?: LegacySaslSecret[]): Promise<boolean>;
  /** Removes the account and everything stored for it (roster, ...); false when it did not exist. */
  remove(host: string, username: string): Promise<boolean>;
  exists(host: string, username: string): Promise<boolean>;
  list(host: string): Promise<Account[]>;
  getScramCredentials(host: string, username: string, hash: ScramHash): Promise<ScramCredentials | undefined>;
}

/** RFC 6121 §2.1.2.5 */
export type Subscription = 'none' | 'to' | 'from' | 'both' | 'remove';

/** RFC 6121 §2.1.2: one contact in a user's roster. */
export interface RosterItem {
  jid: string;
  name?: string;
  subscription: Exclude<Subscription, 'remove'>;
  /** Pending outbound subscription request (RFC 6121 §2.1.2.2, ask='subscribe'). */
  ask: boolean;
  /** Pending inbound subscription request (not shown to clients as an attribute). */
  pendingIn: boolean;
  /** Pre-approval (RFC 6121 §3.4). */
  approved: boolean;
  groups: string[];
}

export interface RosterStore {
  /** The whole roster and its current version (RFC 6121 §2.6); version is '0' for a roster never changed. */
  get(host: string, username: string): Promise<{ version: string; items: RosterItem[] }>;
  getItem(host: string, username: string, jid: string): Promise<RosterItem | undefined>;
  /** Inserts or replaces an item; returns the new roster version. */
  setItem(host: string, username: string, item: RosterItem): Promise<string>;
  /** Removes an item; returns the new roster version, or undefined if there was no such item. */
  removeItem(host: string, username: string, jid: string): Promise<string | undefined>;
  /**
   * Changes since `version` (RFC 6121 §2.6.3): the items changed (removed ones with
   * subscription 'remove'), or undefined when the version is unknown or older than the log.
   */
  changesSince(
    host: string,
    username: string,
    version: string,
  ): Promise<{ version: string; changes: (RosterItem | { jid: string; subscription: 'remove' })[] } | undefined>;
}

/** XEP-0160: one message kept for a user who had no available resource. */
export interface OfflineMessage {
  /** Increases with arrival order for one user; opaque otherwise. */
  id: string;
  /** The whole message stanza, serialised as XML. */
  stanza: string;
  storedAt: Date;
}

export interface OfflineStore {
  /**
   * Appends a message unless the user already has `limit` stored (XEP-0160 §2: a full queue
   * means service-unavailable); returns whether it was stored. Throws for an unknown account.
   */
  push(host: string, username: string, stanza: string, limit: number): Promise<boolean>;
  /** Removes and returns every stored message, oldest first; each message is returned by one call only. */
  take(host: string, username: string): Promise<OfflineMessage[]>;
  count(host: string, username: string): Promise<number>;
}

/** XEP-0054: a user's vCard as stored. */
export interface StoredVCard {
  /** The <vCard xmlns='vcard-temp'/> element, serialised as XML. */
  xml: string;
  /** XEP-0153: lowercase hex SHA-1 of the decoded PHOTO/BINVAL, when there is one. */
  avatarHash?: string;
}

export interface VCardStore {
  get(host: string, username: string): Promise<StoredVCard | undefined>;
  /** Stores or replaces the user's vCard. Throws for an unknown account. */
  set(host: string, username: string, vcard: StoredVCard): Promise<void>;
  /** False when there was none. */
  remove(host: string, username: string): Promise<boolean>;
  /** XEP-0153 hash only, without reading the (possibly large) vCard. */
  avatarHash(host: string, username: string): Promise<string | undefined>;
}

/**
 * XEP-0191 §6 (JID Matching): the blocklist entries that block `jid`, most specific first:
 * user@domain/resource, user@domain, domain/resource, domain. `jid` must be in the
 * canonical form Jid.toString() produces (blocklist entries are stored that way too).
 */
export function blocklistKeysFor(jid: string): string[] {
  // RFC 7622 §3.1: the resourcepart starts at the first '/', the localpart ends at the first '@' before it.
  const slash = jid.indexOf('/');
  const head = slash < 0 ? jid : jid.slice(0, slash);
  const resource = slash < 0 ? undefined : jid.slice(slash + 1);
  const at = head.indexOf('@');
  const domain = at < 0 ? head : head.slice(at + 1);
  const keys: string[] = [];
  if (at >= 0) {
    if (resource !== undefined) keys.push(`${head}/${resource}`);
    keys.push(head);
  }
  if (resource !== undefined) keys.push(`${domain}/${resource}`);
  keys.push(domain);
  return keys;
}

/** XEP-0191: the JIDs a user has blocked, as canonical JID strings. */
export interface BlockingStore {
  /** The blocklist, sorted. */
  list(host: string, username: string): Promise<string[]>;
  /** Adds entries; returns those that were not blocked yet. Throws for an unknown account. */
  block(host: string, username: string, jids: readonly string[]): Promise<string[]>;
  /** Removes entries; returns those that were blocked. */
  unblock(host: string, username: string, jids: readonly string[]): Promise<string[]>;
  /** Empties the blocklist; returns what it held. */
  unblockAll(host: string, username: string): Promise<string[]>;
  /** Whether the user's blocklist has an entry matching `jid` (canonical form, see blocklistKeysFor). */
  isBlocked(host: string, username: string, jid: string): Promise<boolean>;
}

/** Reads the CRAM-MD5/DIGEST-MD5 secrets that AccountStore.create/setCredentials write. */
export interface LegacySecretStore {
  /** Every stored variant for this account, mechanism and realm (empty when there is none). */
  get(host: string, username: string, mechanism: LegacySaslMechanism, realm: string): Promise<LegacySaslSecret[]>;
  /** Accounts of `host` with no secret for `mechanism` (for `realm`, when given): they cannot use it yet. */
  accountsWithout(host: string, mechanism: LegacySaslMechanism, realm?: string): Promise<string[]>;
}

/** An opaque access token issued by `shoal token issue` (tokens: local), as stored: never the token itself. */
export interface StoredToken {
  /** Public identifier, shown by `shoal token list` and part of the token text; not a secret. */
  id: string;
  host: string;
  username: string;
  /** OAuth-style scope values (RFC 6749 §3.3). */
  scope: string[];
  createdAt: Date;
  expiresAt?: Date;
  revokedAt?: Date;
}

export interface TokenStore {
  /** Stores a new token by the SHA-256 of its text. Throws for an unknown account. */
  add(token: StoredToken, hash: Buffer): Promise<void>;
  /** The token whose text hashes to `hash`, revoked or expired ones included (the caller decides). */
  findByHash(hash: Buffer): Promise<StoredToken | undefined>;
  /** Marks the token revoked; false when there is no such token or it was already revoked. */
  revoke(id: string, at?: Date): Promise<boolean>;
  /** The account's tokens, oldest first. */
  list(host: string, username: string): Promise<StoredToken[]>;
}

export interface Storage {
  accounts: AccountStore;
  legacySecrets: LegacySecretStore;
  tokens: TokenStore;
  roster: RosterStore;
  offline: OfflineStore;
  vcard: VCardStore;
  blocking: BlockingStore;
  close(): Promise<void>;
}
