// Storage interfaces, one per concern. Modules see these; the SASL layer sees
// only the narrow contracts of core/credentials.ts, which these extend. The SQLite
// and PostgreSQL implementations live beside them (storage/sql/).
import type {
  AccountDirectory,
  CredentialStore,
  LegacySaslMechanism,
  LegacySaslSecret,
  LegacySecretSource,
  ScramCredentials,
  TokenStore,
} from '../core/credentials.js';
import type { SqlHandle } from './sql/owned.js';

export type { LegacySaslMechanism, LegacySaslSecret, ScramCredentials, ScramHash, StoredToken, TokenStore } from '../core/credentials.js';
export { LEGACY_SASL_MECHANISMS, SCRAM_HASHES } from '../core/credentials.js';

export interface Account {
  /** Domain part of the account's JID (a served host). */
  host: string;
  /** Normalised localpart (RFC 7622 §3.3). */
  username: string;
  createdAt: Date;
}

export interface AccountStore extends AccountDirectory, CredentialStore {
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
  list(host: string): Promise<Account[]>;
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
  /**
   * The whole roster and its current version (RFC 6121 §2.6); version is '0' for a roster never
   * changed. The result may be shared with other callers (a cached read): never modify it.
   */
  get(host: string, username: string): Promise<{ version: string; items: readonly RosterItem[] }>;
  getItem(host: string, username: string, jid: string): Promise<RosterItem | undefined>;
  /** How many items the roster holds (pending-only ones included). */
  count(host: string, username: string): Promise<number>;
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
export interface LegacySecretStore extends LegacySecretSource {
  /** Accounts of `host` with no secret for `mechanism` (for `realm`, when given): they cannot use it yet. */
  accountsWithout(host: string, mechanism: LegacySaslMechanism, realm?: string): Promise<string[]>;
}

export interface Storage {
  accounts: AccountStore;
  legacySecrets: LegacySecretStore;
  tokens: TokenStore;
  roster: RosterStore;
  vcard: VCardStore;
  blocking: BlockingStore;
  /** The SQL database itself, for modules that own their tables (sql/owned.ts). */
  readonly sql: SqlHandle;
  close(): Promise<void>;
}
