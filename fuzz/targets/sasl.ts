// Fuzz target: every SASL mechanism's server side (src/sasl/), driven through its
// exchange's step() as the stream layer drives it (RFC 6120 §6.4), against a fake
// context with known accounts, legacy secrets and tokens.
//
// Input: lines separated by "\n".
//   line 1:   the mechanism name, then options separated by spaces:
//               tls-exporter, tls-server-end-point  channel binding data of that type exists
//               plus                                the server advertised -PLUS mechanisms
//               http                                PLAIN checks passwords with a verifier
//                                                   (auth.backend: http) instead of SCRAM credentials
//               scope                               the token verifier has a required scope and
//                                                   an openid-configuration (OAUTHBEARER's error JSON)
//             An unknown name picks a mechanism from its bytes, so mutations still reach one.
//   line 2..: one client message each, in order: "!" alone is no message (no initial
//             response), "b64:..." is base64 for bytes a line cannot hold, anything else
//             the bytes of the line.
// The exchange runs until it succeeds or fails, or the lines run out.
//
// Invariants:
//   - step() never throws, and every outcome is a challenge (with data), a success
//     (with a prepared account name) or a failure with an RFC 6120 §6.5 condition;
//   - a wrong credential never yields success: every success is checked against the
//     credential computed here, independently of the mechanism's code (RFC 5802 §3
//     for SCRAM, RFC 2195 for CRAM-MD5, RFC 2831 §2.1.2.1 for DIGEST-MD5, the stored
//     password for PLAIN, the token verifier's own verdict for the token mechanisms);
//   - nothing follows a success or a failure but failures.
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { saslprep } from '@mongodb-js/saslprep';
import type { ChannelBindingType, SaslContext, SaslExchange, SaslFailureCondition, SaslMechanism, SaslStep } from '../../src/core/sasl.js';
import type { PasswordVerifier, ScramCredentials, ScramHash, TokenVerdict, TokenVerifier } from '../../src/core/credentials.js';
import { credentialsFromSaltedPassword } from '../../src/sasl/credentials.js';
import { scramMechanism } from '../../src/sasl/scram.js';
import { plainMechanism } from '../../src/sasl/plain.js';
import { digestMd5Mechanism, parseDirectives } from '../../src/sasl/digest-md5.js';
import { cramMd5Mechanism } from '../../src/sasl/cram-md5.js';
import { oauthBearerMechanism } from '../../src/sasl/oauthbearer.js';
import { xOauth2Mechanism } from '../../src/sasl/x-oauth2.js';
import { prepLocalpart } from '../../src/jid/jid.js';
import { HOST, MemoryAccounts, legacySecretsFor } from '../../src/sasl/testing.js';
import { asyncTarget, check } from '../harness.js';

// --- The fixed world the exchanges run in ---------------------------------------------------

/** Accounts of HOST and their passwords: the RFC examples' users. */
const PASSWORDS: Readonly<Record<string, string>> = {
  user: 'pencil', // RFC 5802 §5, RFC 7677 §3
  tim: 'tanstaaftanstaaf', // RFC 2195 §2
  chris: 'secret', // RFC 2831 §4
};

/** SCRAM salts and iteration counts: those of RFC 5802 §5 and RFC 7677 §3 for "user", so the RFC exchanges succeed. */
const SALTS: Readonly<Record<ScramHash, string>> = {
  'SHA-1': 'QSXCR+Q6sek8bf92',
  'SHA-256': 'W22ZaJ0SNY7soEsUEjb6gQ==',
  'SHA-512': 'ZUhTc2FsdHNhbHRzYWx0cw==',
};
const ITERATIONS = 4096;
/** The server's part of the nonce, so a fuzzer can answer a server-first-message it cannot see. */
const SERVER_NONCES: Readonly<Record<ScramHash, string>> = {
  'SHA-1': '3rfcNHYJY1ZVvWVs7j', // RFC 5802 §5
  'SHA-256': '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0', // RFC 7677 §3
  'SHA-512': 'LvOnUYhMyC0fcWqdOO2ELs',
};
const NODE_HASH: Readonly<Record<ScramHash, string>> = { 'SHA-1': 'sha1', 'SHA-256': 'sha256', 'SHA-512': 'sha512' };
const HASHES: readonly ScramHash[] = ['SHA-1', 'SHA-256', 'SHA-512'];

const DIGEST_NONCE = 'OA6MG9tEQGm2hh'; // RFC 2831 §4
const CRAM_CHALLENGE = '<1896.697170952@postoffice.reston.mci.net>'; // RFC 2195 §2

const CB_DATA: Readonly<Record<ChannelBindingType, Buffer>> = {
  'tls-exporter': Buffer.from('0123456789abcdef0123456789abcdef', 'hex'),
  'tls-server-end-point': Buffer.from('fedcba9876543210fedcba9876543210', 'hex'),
};

/** Valid tokens and whose they are; RFC 7628 §4.1's token is user's. */
const TOKENS: Readonly<Record<string, string>> = {
  'vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==': 'user',
  'tim-token': 'tim',
};

/** SaltedPassword (RFC 5802 §2.2 Hi()) of every account and hash, computed with node:crypto only. */
const SALTED = new Map<string, Buffer>();
const accounts = new MemoryAccounts();
for (const [username, password] of Object.entries(PASSWORDS)) {
  const credentials: ScramCredentials[] = [];
  for (const hash of HASHES) {
    const salt = Buffer.from(SALTS[hash], 'base64');
    const salted = pbkdf2Sync(Buffer.from(saslprep(password), 'utf8'), salt, ITERATIONS, hmacLength(hash), NODE_HASH[hash]);
    SALTED.set(`${username}\0${hash}`, salted);
    credentials.push(credentialsFromSaltedPassword(hash, salted, salt, ITERATIONS));
  }
  void accounts.create(HOST, username, credentials);
}
const legacySecrets = legacySecretsFor(HOST, PASSWORDS, ['CRAM-MD5', 'DIGEST-MD5']);

function hmacLength(hash: ScramHash): number {
  return createHash(NODE_HASH[hash]).digest().length;
}

const MECHANISMS: readonly SaslMechanism[] = [
  ...HASHES.flatMap((hash) => [false, true].map((plus) => scramMechanism(hash, plus, { serverNonce: () => SERVER_NONCES[hash] }))),
  plainMechanism(),
  digestMd5Mechanism({ nonce: () => DIGEST_NONCE }),
  cramMd5Mechanism({ challenge: () => CRAM_CHALLENGE }),
  oauthBearerMechanism(),
  xOauth2Mechanism(),
];

const CONDITIONS: ReadonlySet<SaslFailureCondition> = new Set([
  'aborted',
  'account-disabled',
  'credentials-expired',
  'encryption-required',
  'incorrect-encoding',
  'invalid-authzid',
  'invalid-mechanism',
  'malformed-request',
  'mechanism-too-weak',
  'not-authorized',
  'temporary-auth-failure',
]);

// --- What one exchange saw ------------------------------------------------------------------

interface Witness {
  /** Usernames the token verifier vouched for during this exchange. */
  tokenOwners: Set<string>;
  /** Usernames the password verifier said 'ok' for. */
  passwordOwners: Set<string>;
}

function tokenVerifier(w: Witness, scope: boolean): TokenVerifier {
  return {
    ...(scope ? { requiredScope: 'xmpp', openidConfiguration: 'https://example.com/.well-known/openid-configuration' } : {}),
    async verify(token: string, host: string): Promise<TokenVerdict> {
      if (token === 'unavailable') return { ok: false, reason: 'unavailable' };
      if (token === 'throws') throw new Error('verifier down');
      const owner = host === HOST ? TOKENS[token] : undefined;
      if (owner === undefined) return { ok: false, reason: 'unknown' };
      w.tokenOwners.add(owner);
      return { ok: true, username: owner, scope: [] };
    },
  };
}

function passwordVerifier(w: Witness): PasswordVerifier {
  return {
    async verify(host, username, password) {
      if (password === 'unavailable') return 'unavailable';
      if (host === HOST && PASSWORDS[username] === password) {
        w.passwordOwners.add(username);
        return 'ok';
      }
      return 'wrong';
    },
  };
}

function context(options: Set<string>, w: Witness): SaslContext {
  const cbTypes = (['tls-exporter', 'tls-server-end-point'] as const).filter((t) => options.has(t));
  return {
    host: HOST,
    secure: true,
    channelBindingTypes: cbTypes,
    channelBinding: (type) => (cbTypes.includes(type) ? CB_DATA[type] : undefined),
    plusAdvertised: options.has('plus'),
    accounts,
    legacySecrets,
    tokens: tokenVerifier(w, options.has('scope')),
    ...(options.has('http') ? { passwords: passwordVerifier(w) } : {}),
  };
}

// --- Independent checks of a success ---------------------------------------------------------

const b64 = (b: Buffer): string => b.toString('base64');

/** RFC 5802 §3 ClientProof for `username`, from the messages as sent. */
function scramProof(hash: ScramHash, username: string, authMessage: string): string | undefined {
  const salted = SALTED.get(`${username}\0${hash}`);
  if (salted === undefined) return undefined;
  const h = NODE_HASH[hash];
  const clientKey = createHmac(h, salted).update('Client Key').digest();
  const storedKey = createHash(h).update(clientKey).digest();
  const signature = createHmac(h, storedKey).update(authMessage).digest();
  return b64(Buffer.from(clientKey.map((byte, i) => byte ^ signature[i]!)));
}

function checkScramSuccess(mech: string, messages: Buffer[], challenges: Buffer[], options: Set<string>, username: string): void {
  const hash = HASHES.find((h) => mech.startsWith(`SCRAM-${h}`))!;
  const plus = mech.endsWith('-PLUS');
  const first = messages[messages.length - 2]?.toString('utf8') ?? '';
  const final = messages[messages.length - 1]!.toString('utf8');
  const serverFirst = challenges[challenges.length - 1]!.toString('utf8');
  // gs2-header = flag "," [authzid] ","; client-first-message-bare is the rest.
  const second = first.indexOf(',', first.indexOf(',') + 1);
  const gs2Header = first.slice(0, second + 1);
  const bare = first.slice(second + 1);
  const proofAt = final.lastIndexOf(',p=');
  check(proofAt >= 0, `${mech} succeeded without a proof: ${JSON.stringify(final)}`);
  const expected = scramProof(hash, username, `${bare},${serverFirst},${final.slice(0, proofAt)}`);
  check(expected !== undefined && final.slice(proofAt + 3) === expected, `${mech} succeeded for ${username} with a wrong proof`);
  // RFC 5802 §6: the channel binding sent must be the gs2-header and, for -PLUS, this connection's data.
  const cbType = gs2Header.startsWith('p=') ? (gs2Header.slice(2, gs2Header.indexOf(',')) as ChannelBindingType) : undefined;
  const cbData = plus && cbType !== undefined && options.has(cbType) ? CB_DATA[cbType] : Buffer.alloc(0);
  check(!plus || cbType !== undefined, `${mech} succeeded without channel binding`);
  const c = /(?:^|,)c=([^,]*)/.exec(final)?.[1];
  check(c === b64(Buffer.concat([Buffer.from(gs2Header, 'utf8'), cbData])), `${mech} succeeded with channel binding ${c}`);
}

function checkPlainSuccess(message: Buffer, username: string, w: Witness, options: Set<string>): void {
  if (options.has('http')) {
    check(w.passwordOwners.has(username), `PLAIN (http) succeeded for ${username} without the verifier's ok`);
    return;
  }
  const parts = message.toString('utf8').split('\0');
  let prepared: string;
  try {
    prepared = saslprep(parts[2] ?? '');
  } catch {
    prepared = '';
  }
  check(parts.length === 3 && prepared === saslprep(PASSWORDS[username] ?? ''), `PLAIN succeeded for ${username} with a wrong password`);
}

function checkCramSuccess(message: Buffer, username: string): void {
  const text = message.toString('utf8');
  const digest = text.slice(text.lastIndexOf(' ') + 1).toLowerCase();
  const expected = createHmac('md5', saslprep(PASSWORDS[username] ?? '')).update(CRAM_CHALLENGE).digest('hex');
  check(digest === expected, `CRAM-MD5 succeeded for ${username} with a wrong digest`);
}

/** RFC 2831 §2.1.2.1 response-value, written out here from the RFC (user, realm and password in UTF-8). */
function checkDigestSuccess(message: Buffer, username: string): void {
  const d = parseDirectives(message.toString('utf8'));
  check(d !== undefined, 'DIGEST-MD5 succeeded with a response that does not parse');
  const H = (b: Buffer | string): Buffer => createHash('md5').update(b).digest();
  const HEX = (b: Buffer): string => b.toString('hex');
  const get = (k: string): string => d.get(k) ?? '';
  const authzid = d.get('authzid');
  const password = saslprep(PASSWORDS[username] ?? '');
  // Both the ISO 8859-1 form of §2.1.2.1 and plain UTF-8 are accepted; the accounts here are ASCII.
  const a1 = Buffer.concat([H(`${username}:${HOST}:${password}`), Buffer.from(`:${get('nonce')}:${get('cnonce')}${authzid !== undefined ? `:${authzid}` : ''}`, 'utf8')]);
  const a2 = `AUTHENTICATE:${get('digest-uri')}`;
  const expected = HEX(H(`${HEX(H(a1))}:${get('nonce')}:${get('nc')}:${get('cnonce')}:${d.get('qop') ?? 'auth'}:${HEX(H(a2))}`));
  check(get('response').toLowerCase() === expected, `DIGEST-MD5 succeeded for ${username} with a wrong response`);
  check(get('nonce') === DIGEST_NONCE, 'DIGEST-MD5 succeeded with a nonce it did not send');
}

// --- The target ------------------------------------------------------------------------------

function pickMechanism(name: string): SaslMechanism {
  const known = MECHANISMS.find((m) => m.name === name);
  if (known !== undefined) return known;
  let sum = 0;
  for (let i = 0; i < name.length; i++) sum += name.charCodeAt(i);
  return MECHANISMS[sum % MECHANISMS.length]!;
}

function decodeLine(line: Buffer): Buffer | undefined {
  if (line.length === 1 && line[0] === 0x21 /* ! */) return undefined;
  if (line.subarray(0, 4).toString('latin1') === 'b64:') return Buffer.from(line.subarray(4).toString('latin1'), 'base64');
  return line;
}

function splitLines(data: Buffer): Buffer[] {
  const lines: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= data.length; i++) {
    if (i === data.length || data[i] === 0x0a) {
      lines.push(data.subarray(start, i));
      start = i + 1;
    }
  }
  return lines;
}

function checkOutcome(step: SaslStep, mech: string): void {
  check(typeof step === 'object' && step !== null, `${mech}: step() resolved to ${String(step)}`);
  if (step.kind === 'challenge') check(Buffer.isBuffer(step.data), `${mech}: challenge without data`);
  else if (step.kind === 'failure') check(CONDITIONS.has(step.condition), `${mech}: failure condition ${String(step.condition)} is not RFC 6120 §6.5`);
  else if (step.kind === 'success') {
    check(typeof step.username === 'string' && step.username !== '', `${mech}: success without a username`);
    check(prepLocalpart(step.username) === step.username, `${mech}: success for an unprepared username ${JSON.stringify(step.username)}`);
  } else check(false, `${mech}: step() resolved to kind ${String((step as { kind: unknown }).kind)}`);
}

async function step(exchange: SaslExchange, mech: string, message: Buffer | undefined): Promise<SaslStep> {
  try {
    return await exchange.step(message);
  } catch (e) {
    throw new Error(`${mech}: step() threw: ${(e as Error).stack ?? String(e)}`, { cause: e });
  }
}

export const fuzz = asyncTarget(async (data) => {
  const [head = Buffer.alloc(0), ...rest] = splitLines(data);
  const [name = '', ...opts] = head.toString('latin1').split(' ');
  const options = new Set(opts);
  const mechanism = pickMechanism(name);
  const mech = mechanism.name;
  const witness: Witness = { tokenOwners: new Set(), passwordOwners: new Set() };
  const exchange = mechanism.start(context(options, witness));

  const messages: Buffer[] = [];
  const challenges: Buffer[] = [];
  let done: SaslStep | undefined;
  for (const line of rest.slice(0, 4)) {
    const message = decodeLine(line);
    const result = await step(exchange, mech, message);
    checkOutcome(result, mech);
    if (done !== undefined) {
      // The stream layer never steps a finished exchange; if something does, it must not succeed.
      check(result.kind === 'failure', `${mech}: ${result.kind} after the exchange ended in ${done.kind}`);
      continue;
    }
    if (message !== undefined) messages.push(message);
    if (result.kind === 'challenge') {
      challenges.push(result.data);
      continue;
    }
    done = result;
    if (result.kind !== 'success') continue;
    const username = result.username;
    check(message !== undefined, `${mech}: success without a client message`);
    if (mech.startsWith('SCRAM-')) checkScramSuccess(mech, messages, challenges, options, username);
    else if (mech === 'PLAIN') checkPlainSuccess(message, username, witness, options);
    else if (mech === 'CRAM-MD5') checkCramSuccess(message, username);
    else if (mech === 'DIGEST-MD5') checkDigestSuccess(message, username);
    else check(witness.tokenOwners.has(username), `${mech} succeeded for ${username} without a token of theirs`);
  }
  const authcid = exchange.authcid;
  check(authcid === undefined || typeof authcid === 'string', `${mech}: authcid is ${typeof authcid}`);
});
