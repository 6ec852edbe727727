// The accounts and rosters every server gets, and their SCRAM-SHA-1 credentials
// (RFC 5802 §3). Salts are derived from the username so that every server
// stores byte-identical credentials, and the load generator can be handed the
// matching client keys up front (RFC 5802 §5.1 client-side caching) instead of
// running 4096 PBKDF2 rounds per login, which would make it the bottleneck.
import { createHash } from 'node:crypto';
import { keysFromSaltedPassword, saltedPassword, ScramCache } from '../load/scram.js';

export const ITERATIONS = 4096;

export interface BenchAccount {
  user: string;
  password: string;
  /** Printable ASCII (Prosody keeps the salt as a string). */
  salt: string;
  storedKey: Buffer;
  serverKey: Buffer;
  clientKey: Buffer;
}

export interface AccountPlan {
  /** user1..userN: the login, idle and chat scenarios. */
  plainUsers: number;
  /** ruser1..ruserR: the roster scenario's users. */
  rosterUsers: number;
  /** Contacts per roster user: the other roster users, then rcontact1..K as needed. */
  contactsPerUser: number;
  /** suser1..2P for the resume scenario: (suser1, suser2), (suser3, suser4), ... are mutual contacts. */
  smPairs?: number;
}

export const USER_PATTERN = 'user%d';
export const PASSWORD_PATTERN = 'pw-%d';
export const ROSTER_USER_PATTERN = 'ruser%d';
export const ROSTER_PASSWORD_PATTERN = 'rpw-%d';
export const SM_USER_PATTERN = 'suser%d';
export const SM_PASSWORD_PATTERN = 'spw-%d';

export interface BenchData {
  domain: string;
  accounts: BenchAccount[];
  /** Username → contacts' usernames (all subscription 'both', RFC 6121 §2.1.2.5). */
  rosters: Map<string, string[]>;
  rosterItems: number;
}

const fill = (pattern: string, i: number): string => pattern.replace(/%d/g, String(i));

async function account(user: string, password: string): Promise<BenchAccount> {
  const salt = createHash('sha256').update(`shoal-bench-salt:${user}`).digest('hex').slice(0, 24);
  const salted = await saltedPassword(password, Buffer.from(salt, 'ascii'), ITERATIONS);
  const { clientKey, serverKey } = keysFromSaltedPassword(salted);
  return { user, password, salt, clientKey, serverKey, storedKey: createHash('sha1').update(clientKey).digest() };
}

export async function makeBenchData(domain: string, plan: AccountPlan): Promise<BenchData> {
  const specs: [string, string][] = [];
  for (let i = 1; i <= plan.plainUsers; i++) specs.push([fill(USER_PATTERN, i), fill(PASSWORD_PATTERN, i)]);
  const rosterUsers: string[] = [];
  for (let i = 1; i <= plan.rosterUsers; i++) {
    rosterUsers.push(fill(ROSTER_USER_PATTERN, i));
    specs.push([fill(ROSTER_USER_PATTERN, i), fill(ROSTER_PASSWORD_PATTERN, i)]);
  }
  const smPairs = plan.smPairs ?? 0;
  for (let i = 1; i <= 2 * smPairs; i++) specs.push([fill(SM_USER_PATTERN, i), fill(SM_PASSWORD_PATTERN, i)]);
  const extra = Math.max(0, plan.contactsPerUser - Math.max(0, plan.rosterUsers - 1));
  const extraUsers: string[] = [];
  for (let i = 1; i <= extra; i++) {
    extraUsers.push(`rcontact${i}`);
    specs.push([`rcontact${i}`, `cpw-${i}`]);
  }
  // PBKDF2 runs on libuv's thread pool: a few hundred at a time keeps every core busy.
  const accounts: BenchAccount[] = new Array(specs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < specs.length) {
        const k = next++;
        const [u, p] = specs[k]!;
        accounts[k] = await account(u, p);
      }
    }),
  );
  const rosters = new Map<string, string[]>();
  let rosterItems = 0;
  if (plan.contactsPerUser > 0) {
    for (const u of rosterUsers) {
      const contacts = [...rosterUsers.filter((o) => o !== u).slice(0, plan.contactsPerUser), ...extraUsers].slice(0, plan.contactsPerUser);
      rosters.set(u, contacts);
      rosterItems += contacts.length;
    }
    // The reverse items, so every 'both' subscription is recorded on both sides.
    for (const c of extraUsers) {
      rosters.set(c, [...rosterUsers]);
      rosterItems += rosterUsers.length;
    }
  }
  for (let i = 1; i <= smPairs; i++) {
    const [a, b] = [fill(SM_USER_PATTERN, 2 * i - 1), fill(SM_USER_PATTERN, 2 * i)];
    rosters.set(a, [b]).set(b, [a]);
    rosterItems += 2;
  }
  return { domain, accounts, rosters, rosterItems };
}

/** The client side of the same credentials, for the load generator. */
export function scramCacheFor(data: BenchData): ScramCache {
  const cache = new ScramCache();
  for (const a of data.accounts) cache.set(a.password, Buffer.from(a.salt, 'ascii'), ITERATIONS, { clientKey: a.clientKey, serverKey: a.serverKey });
  return cache;
}
