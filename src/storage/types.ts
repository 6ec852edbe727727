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

export interface AccountStore {
  /** Creates the account with credentials for every hash; false when it already exists. */
  create(host: string, username: string, credentials: ScramCredentials[]): Promise<boolean>;
  /** Replaces all credentials of an existing account; false when there is no such account. */
  setCredentials(host: string, username: string, credentials: ScramCredentials[]): Promise<boolean>;
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

export interface Storage {
  accounts: AccountStore;
  roster: RosterStore;
  close(): Promise<void>;
}
