// Fixtures for the mechanism unit tests (*.test.ts beside this file): an in-memory
// account store, the legacy secrets and token verifiers the mechanisms consult, and
// a context to run an exchange in. The real stores live in src/storage/ and src/auth/.
import assert from 'node:assert/strict';
import type { Account, AccountStore, LegacySaslSecret, LegacySecretStore, ScramCredentials, ScramHash } from '../storage/types.js';
import type { TokenVerdict, TokenVerifier } from '../core/credentials.js';
import type { SaslContext, SaslStep } from '../core/sasl.js';
import { deriveAllScramCredentials } from './credentials.js';
import { deriveLegacySecrets } from './legacy-credentials.js';

export const HOST = 'example.com';

/** A tiny AccountStore; `lookups` counts the credential reads. */
export class MemoryAccounts implements AccountStore {
  private readonly accounts = new Map<string, { account: Account; credentials: ScramCredentials[] }>();
  lookups = 0;

  private key(host: string, username: string): string {
    return `${username}@${host}`;
  }
  async create(host: string, username: string, credentials: ScramCredentials[]): Promise<boolean> {
    if (this.accounts.has(this.key(host, username))) return false;
    this.accounts.set(this.key(host, username), { account: { host, username, createdAt: new Date() }, credentials });
    return true;
  }
  async setCredentials(host: string, username: string, credentials: ScramCredentials[]): Promise<boolean> {
    const entry = this.accounts.get(this.key(host, username));
    if (entry === undefined) return false;
    entry.credentials = credentials;
    return true;
  }
  async remove(host: string, username: string): Promise<boolean> {
    return this.accounts.delete(this.key(host, username));
  }
  async exists(host: string, username: string): Promise<boolean> {
    return this.accounts.has(this.key(host, username));
  }
  async list(host: string): Promise<Account[]> {
    return [...this.accounts.values()].map((e) => e.account).filter((a) => a.host === host);
  }
  async getScramCredentials(host: string, username: string, hash: ScramHash): Promise<ScramCredentials | undefined> {
    this.lookups++;
    return this.accounts.get(this.key(host, username))?.credentials.find((c) => c.hash === hash);
  }
}

/** A store with one account of HOST, with SCRAM credentials for every hash. */
export async function withUser(username: string, password: string): Promise<MemoryAccounts> {
  const accounts = new MemoryAccounts();
  await accounts.create(HOST, username, deriveAllScramCredentials(password));
  return accounts;
}

/** Secrets for `mechanisms` as `shoal user add` stores them, for accounts of `host` only. */
export function legacySecretsFor(host: string, users: Record<string, string>, mechanisms: readonly string[]): LegacySecretStore {
  const all = new Map<string, LegacySaslSecret[]>();
  for (const [user, password] of Object.entries(users)) all.set(user, deriveLegacySecrets(host, user, password, mechanisms));
  return {
    get: async (h, u, m, r) => (h === host ? (all.get(u) ?? []).filter((s) => s.mechanism === m && s.realm === r) : []),
    accountsWithout: async () => [],
  };
}

/** Tokens as a table: token text -> verdict, for HOST only. Records what it was asked. */
export function tokenTable(table: Record<string, TokenVerdict>, extra: Partial<TokenVerifier> = {}): TokenVerifier & { calls: unknown[][] } {
  const calls: unknown[][] = [];
  return {
    calls,
    ...extra,
    async verify(token, host, claimed) {
      calls.push([token, host, claimed]);
      if (host !== HOST) return { ok: false, reason: 'wrong-host' };
      return table[token] ?? { ok: false, reason: 'unknown' };
    },
  };
}

/** A valid token's verdict for `username`. */
export const ok = (username: string): TokenVerdict => ({ ok: true, username, scope: [] });

/**
 * A context for HOST over TLS without channel binding, and an account store that is
 * not one (for the mechanisms that never read it); `fields` replace any of that.
 */
export function saslContext(fields: Partial<SaslContext> = {}): SaslContext {
  return {
    host: HOST,
    secure: true,
    channelBinding: () => undefined,
    channelBindingTypes: [],
    plusAdvertised: false,
    accounts: {} as AccountStore,
    ...fields,
  };
}

/** The failure condition, or the kind of a step that is not a failure. */
export const condition = (step: SaslStep): string => (step.kind === 'failure' ? step.condition : step.kind);

export function assertFailure(step: SaslStep, expected: string): void {
  assert.equal(step.kind, 'failure');
  if (step.kind === 'failure') assert.equal(step.condition, expected);
}
