// Fuzz target: JID parsing and preparation (src/jid/jid.ts, RFC 7622) and the
// PRECIS profiles under it (src/jid/precis.ts, RFC 8264/8265).
//
// Input: the string to parse. A first byte 0x00 reads the rest as UTF-16LE, so the
// string can hold unpaired surrogates; anything else is read as UTF-8 (a malformed
// sequence becoming U+FFFD, as the XML layer would never let it through).
//
// Invariants:
//   - only JidError comes out of Jid.parse and the prep* functions, only
//     PrecisError out of the profiles;
//   - preparation is idempotent: a prepared part prepares to itself (RFC 8264 §7:
//     applying a profile to its own output changes nothing; RFC 7622 §3.1 relies
//     on it for JIDs that are compared or re-parsed), and a parsed JID re-parses
//     from its string form to an equal JID;
//   - the parts are consistent: toString() is local@domain/resource with the empty
//     parts left out, bare() drops only the resource, and each part is what the
//     matching prep* function makes of that part of the input (RFC 7622 §3.1).
import { Jid, JidError, prepDomainpart, prepLocalpart, prepResourcepart } from '../../src/jid/jid.js';
import { PrecisError, opaqueString, usernameCaseMapped } from '../../src/jid/precis.js';
import { check, syncTarget } from '../harness.js';

type Outcome = { ok: true; value: string } | { ok: false; message: string };

function attempt(fn: (s: string) => string, s: string, allowed: typeof JidError | typeof PrecisError, what: string): Outcome {
  try {
    const value = fn(s);
    check(typeof value === 'string', `${what} returned ${typeof value}`);
    return { ok: true, value };
  } catch (e) {
    if (e instanceof allowed) return { ok: false, message: e.message };
    throw new Error(`${what}(${JSON.stringify(s)}) threw ${(e as Error).name}: ${(e as Error).message}`, { cause: e });
  }
}

/** fn(fn(s)) === fn(s) whenever fn(s) succeeds. */
function idempotent(fn: (s: string) => string, s: string, allowed: typeof JidError | typeof PrecisError, what: string): Outcome {
  const once = attempt(fn, s, allowed, what);
  if (!once.ok) return once;
  const twice = attempt(fn, once.value, allowed, what);
  check(twice.ok, `${what}: ${JSON.stringify(s)} prepares to ${JSON.stringify(once.value)}, which is refused: ${twice.ok ? '' : twice.message}`);
  check(
    twice.value === once.value,
    `${what} is not idempotent: ${JSON.stringify(s)} -> ${JSON.stringify(once.value)} -> ${JSON.stringify(twice.value)}`,
  );
  return once;
}

function checkJid(s: string): void {
  let jid: Jid;
  try {
    jid = Jid.parse(s);
  } catch (e) {
    if (e instanceof JidError) return;
    throw new Error(`Jid.parse(${JSON.stringify(s)}) threw ${(e as Error).name}: ${(e as Error).message}`, { cause: e });
  }
  const { local, domain, resource } = jid;
  check(domain !== '', `${JSON.stringify(s)}: parsed with an empty domainpart`);
  const text = jid.toString();
  const bare = local === '' ? domain : `${local}@${domain}`;
  check(jid.bareString() === bare, `${JSON.stringify(s)}: bareString() ${JSON.stringify(jid.bareString())}, parts say ${JSON.stringify(bare)}`);
  check(text === (resource === '' ? bare : `${bare}/${resource}`), `${JSON.stringify(s)}: toString() ${JSON.stringify(text)} does not match its parts`);
  check(jid.isBare() === (resource === ''), `${JSON.stringify(s)}: isBare() is wrong`);
  const b = jid.bare;
  check(b.local === local && b.domain === domain && b.resource === '', `${JSON.stringify(s)}: bare() changed more than the resource`);
  check(b.toString() === bare, `${JSON.stringify(s)}: bare().toString() is ${JSON.stringify(b.toString())}`);

  // RFC 7622 §3.1: the resourcepart starts at the first "/", the localpart ends at the
  // first "@" before it; each part is then prepared on its own.
  const slash = s.indexOf('/');
  const head = slash < 0 ? s : s.slice(0, slash);
  const at = head.indexOf('@');
  check(local === (at < 0 ? '' : prepLocalpart(head.slice(0, at))), `${JSON.stringify(s)}: localpart ${JSON.stringify(local)} differs from prepLocalpart`);
  check(domain === prepDomainpart(at < 0 ? head : head.slice(at + 1)), `${JSON.stringify(s)}: domainpart ${JSON.stringify(domain)} differs from prepDomainpart`);
  check(resource === (slash < 0 ? '' : prepResourcepart(s.slice(slash + 1))), `${JSON.stringify(s)}: resourcepart ${JSON.stringify(resource)} differs from prepResourcepart`);

  // A prepared JID is its own preparation.
  let again: Jid;
  try {
    again = Jid.parse(text);
  } catch (e) {
    throw new Error(`${JSON.stringify(s)} parses to ${JSON.stringify(text)}, which does not parse: ${(e as Error).message}`, { cause: e });
  }
  check(again.equals(jid) && again.toString() === text, `${JSON.stringify(s)} -> ${JSON.stringify(text)} -> ${JSON.stringify(again.toString())}`);
  const bareAgain = Jid.parse(bare);
  check(bareAgain.equals(b), `${JSON.stringify(bare)} (bare of ${JSON.stringify(s)}) re-parses to ${JSON.stringify(bareAgain.toString())}`);
}

export const fuzz = syncTarget((data) => {
  const s = data[0] === 0 ? data.subarray(1, data.length - ((data.length - 1) % 2)).toString('utf16le') : data.toString('utf8');
  checkJid(s);
  const local = idempotent(prepLocalpart, s, JidError, 'prepLocalpart');
  if (local.ok) check(!/[@/]/.test(local.value), `prepLocalpart(${JSON.stringify(s)}) keeps "@" or "/"`);
  const domain = idempotent(prepDomainpart, s, JidError, 'prepDomainpart');
  if (domain.ok) check(!/[@/]/.test(domain.value), `prepDomainpart(${JSON.stringify(s)}) keeps "@" or "/"`);
  idempotent(prepResourcepart, s, JidError, 'prepResourcepart');
  idempotent(usernameCaseMapped, s, PrecisError, 'usernameCaseMapped');
  idempotent(opaqueString, s, PrecisError, 'opaqueString');
});
