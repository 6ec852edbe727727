// XMPP addresses (RFC 7622). Parsing splits per §3.1, then each part is
// prepared and enforced: localpart = UsernameCaseMapped (§3.3), resourcepart =
// OpaqueString (§3.4), domainpart = IDNA2008 U-labels or an IP literal (§3.2).
//
// Jid.parse runs for every stanza attribute, so every preparation function has
// an ASCII fast path that does no normalisation and no regex work.
import { isIPv6 } from 'node:net';
import { domainToASCII, domainToUnicode } from 'node:url';
import {
  PrecisError,
  asciiScan,
  bidiRuleHolds,
  codePoints,
  firstInvalidIdnaCodePoint,
  hasRtl,
  mapWidth,
  opaqueString,
  usernameCaseMapped,
} from './precis.js';

export class JidError extends Error {
  override name = 'JidError';
}

/** RFC 7622 §3.2-§3.4: each part is 1 to 1023 octets of UTF-8 after preparation. */
const MAX_PART_OCTETS = 1023;

function utf8Length(s: string): number {
  // Every UTF-16 unit is at least one octet, so only long strings need counting.
  return s.length * 3 <= MAX_PART_OCTETS ? s.length : Buffer.byteLength(s, 'utf8');
}

function checkLength(s: string, part: string): void {
  if (s.length > MAX_PART_OCTETS || utf8Length(s) > MAX_PART_OCTETS) {
    throw new JidError(`${part} is longer than ${MAX_PART_OCTETS} octets`);
  }
}

function rethrow(e: unknown, part: string): never {
  if (e instanceof PrecisError) throw new JidError(`${part}: ${e.message}`);
  throw e;
}

// ---------------------------------------------------------------------------
// Localpart (RFC 7622 §3.3)

// RFC 7622 §3.3.1: disallowed in localparts on top of UsernameCaseMapped.
const LOCALPART_EXTRA_DISALLOWED = /["&'/:<>@]/;

// 1 = valid, 2 = uppercase (to lowercase), 0 = invalid: ASCII7 minus the
// characters above; U+0020 is not in IdentifierClass (RFC 8264 §9.14 Spaces).
const ASCII_LOCALPART = new Uint8Array(128);
for (let c = 0x21; c <= 0x7e; c++) {
  if (!LOCALPART_EXTRA_DISALLOWED.test(String.fromCharCode(c))) ASCII_LOCALPART[c] = c >= 0x41 && c <= 0x5a ? 2 : 1;
}

/** Prepares and enforces a localpart. Throws JidError. */
export function prepLocalpart(s: string): string {
  const fast = asciiScan(s, ASCII_LOCALPART);
  let out: string;
  if (fast === 1 || fast === 2) {
    if (s.length === 0) throw new JidError('localpart is empty');
    out = fast === 2 ? s.toLowerCase() : s;
  } else if (fast === 0) {
    throw new JidError('localpart contains a disallowed character');
  } else {
    try {
      out = usernameCaseMapped(s);
    } catch (e) {
      rethrow(e, 'localpart');
    }
    // Checked after mapping: width mapping turns e.g. U+FF20 into "@".
    if (LOCALPART_EXTRA_DISALLOWED.test(out)) throw new JidError('localpart contains a disallowed character');
  }
  checkLength(out, 'localpart');
  return out;
}

// ---------------------------------------------------------------------------
// Resourcepart (RFC 7622 §3.4)

// FreeformClass ASCII: U+0020..U+007E; controls are disallowed (RFC 8264 §9.12).
const ASCII_RESOURCEPART = new Uint8Array(128);
for (let c = 0x20; c <= 0x7e; c++) ASCII_RESOURCEPART[c] = 1;

/** Prepares and enforces a resourcepart. Throws JidError. */
export function prepResourcepart(s: string): string {
  const fast = asciiScan(s, ASCII_RESOURCEPART);
  let out: string;
  if (fast === 1) {
    if (s.length === 0) throw new JidError('resourcepart is empty');
    out = s;
  } else if (fast === 0) {
    throw new JidError('resourcepart contains a disallowed character');
  } else {
    try {
      out = opaqueString(s);
    } catch (e) {
      rethrow(e, 'resourcepart');
    }
  }
  checkLength(out, 'resourcepart');
  return out;
}

// ---------------------------------------------------------------------------
// Domainpart (RFC 7622 §3.2)

// Character kinds for the ASCII domain scan: 1 = [a-z0-9], 2 = [A-Z], 3 = "-", 4 = ".".
const ASCII_DOMAIN = new Uint8Array(128);
for (let c = 0x61; c <= 0x7a; c++) ASCII_DOMAIN[c] = 1;
for (let c = 0x30; c <= 0x39; c++) ASCII_DOMAIN[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) ASCII_DOMAIN[c] = 2;
ASCII_DOMAIN[0x2d] = 3;
ASCII_DOMAIN[0x2e] = 4;

const DOMAIN_NON_ASCII = -1;
const DOMAIN_INVALID = 0;
const DOMAIN_OK = 1;
/** Flag: holds "xn--" labels, which need A-label decoding. */
const DOMAIN_ALABEL = 2;
/** Flag: holds uppercase letters. */
const DOMAIN_UPPER = 4;

/**
 * One pass over an ASCII domain, label by label: 1..63 octets of LDH, no
 * hyphen at either end, no "--" at positions 3-4 except "xn--" (RFC 5891
 * §4.2.3.1; other R-LDH labels are not NR-LDH, RFC 5890 §2.3.1).
 */
function scanAsciiDomain(d: string): number {
  let flags = DOMAIN_OK;
  let start = 0;
  const n = d.length;
  for (let i = 0; i <= n; i++) {
    const c = i < n ? d.charCodeAt(i) : 0x2e;
    if (c >= 0x80) return DOMAIN_NON_ASCII;
    const kind = ASCII_DOMAIN[c]!;
    if (kind === 4) {
      const len = i - start;
      if (len === 0 || len > 63) return DOMAIN_INVALID;
      if (d.charCodeAt(start) === 0x2d || d.charCodeAt(i - 1) === 0x2d) return DOMAIN_INVALID;
      if (len >= 4 && d.charCodeAt(start + 2) === 0x2d && d.charCodeAt(start + 3) === 0x2d) {
        const x = d.charCodeAt(start) | 0x20;
        const y = d.charCodeAt(start + 1) | 0x20;
        if (x !== 0x78 || y !== 0x6e) return DOMAIN_INVALID;
        flags |= DOMAIN_ALABEL;
      }
      start = i + 1;
    } else if (kind === 2) {
      flags |= DOMAIN_UPPER;
    } else if (kind === 0) {
      // Not LDH; a later non-ASCII character still sends it to the IDN path.
      for (let j = i + 1; j < n; j++) if (d.charCodeAt(j) >= 0x80) return DOMAIN_NON_ASCII;
      return DOMAIN_INVALID;
    }
  }
  return flags;
}

/** RFC 7622 §3.2: IP-literal (RFC 3986 §3.2.2). Only IPv6 addresses, without zone. */
function prepIpLiteral(s: string): string {
  const inner = s.endsWith(']') ? s.slice(1, -1) : '';
  if (!isIPv6(inner) || inner.includes('%')) throw new JidError('domainpart is not a valid IPv6 literal');
  // Canonical text form (RFC 5952) so that equal addresses compare equal.
  return new URL(`http://[${inner}]/`).hostname;
}

const RE_LEADING_MARK = /^\p{M}/u;
const RE_LONE_SURROGATE = /\p{Cs}/u;
const RE_IDEOGRAPHIC_FULL_STOP = /\u3002/g;

/** RFC 5891 §4.2.3 / §5.4 checks of one U-label (already mapped). */
function checkULabel(label: string, cps: readonly number[]): void {
  if (label.length >= 4 && label[2] === '-' && label[3] === '-') throw new JidError('domainpart label has "--" in positions 3-4');
  if (label.startsWith('-') || label.endsWith('-')) throw new JidError('domainpart label starts or ends with a hyphen');
  if (RE_LEADING_MARK.test(label)) throw new JidError('domainpart label starts with a combining mark');
  const bad = firstInvalidIdnaCodePoint(cps);
  if (bad >= 0) {
    throw new JidError(`domainpart contains disallowed U+${cps[bad]!.toString(16).toUpperCase().padStart(4, '0')}`);
  }
  // RFC 5890 §2.3.2.1: the A-label form must fit a DNS label.
  if (cps.some((cp) => cp >= 0x80)) {
    const alabel = domainToASCII(label);
    if (alabel === '' || alabel.includes('.')) throw new JidError('domainpart label cannot be converted to an A-label');
    if (alabel.length > 63) throw new JidError('domainpart label is longer than 63 octets as an A-label');
  }
}

/**
 * RFC 7622 §3.2.2 width, case and NFC mapping (as RFC 5895 §2 does, U+3002
 * IDEOGRAPHIC FULL STOP, also the target of U+FF61, is a label separator).
 */
function mapDomain(s: string): string {
  return mapWidth(s).replace(RE_IDEOGRAPHIC_FULL_STOP, '.').toLowerCase().normalize('NFC');
}

/** Internationalised domainpart: RFC 7622 §3.2.1/§3.2.2 with RFC 5891/5892/5893. */
function prepIdnDomain(s: string): string {
  if (RE_LONE_SURROGATE.test(s)) throw new JidError('domainpart contains an unpaired surrogate');
  const mapped = mapDomain(s);
  const labels = mapped.split('.');
  const all: number[][] = [];
  let bidi = false;
  for (let i = 0; i < labels.length; i++) {
    let label = labels[i]!;
    if (label === '') throw new JidError('domainpart has an empty label');
    // RFC 7622 §3.2.1: A-labels are converted to U-labels. The round trip
    // rejects malformed Punycode and non-canonical encodings.
    if (label.startsWith('xn--')) {
      const u = domainToUnicode(label);
      if (u === '' || u === label || u.includes('.') || domainToASCII(u) !== label) {
        throw new JidError('domainpart contains an invalid A-label');
      }
      // node:url converts with UTS #46, which maps what it decodes: "xn--bce" (U+ABBB,
      // DISALLOWED by RFC 5892) comes back as U+13EB, which the mapping above would turn
      // into U+ABBB again. A U-label must be what its own preparation gives (RFC 8264
      // §7: preparing twice changes nothing), or the result would not parse again.
      if (mapDomain(u) !== u) throw new JidError('domainpart contains an invalid A-label');
      label = u;
      labels[i] = u;
    }
    const cps = codePoints(label);
    checkULabel(label, cps);
    if (hasRtl(cps)) bidi = true;
    all.push(cps);
  }
  // RFC 5893 §2: in a domain with any RTL label every label obeys the Bidi Rule.
  if (bidi && !all.every(bidiRuleHolds)) throw new JidError('domainpart violates the Bidi Rule');
  return labels.join('.');
}

/** Prepares and enforces a domainpart. Throws JidError. */
export function prepDomainpart(input: string): string {
  // RFC 7622 §3.2: a final label separator is stripped before anything else.
  const s = input.endsWith('.') ? input.slice(0, -1) : input;
  if (s.length === 0) throw new JidError('domainpart is empty');
  if (s.charCodeAt(0) === 0x5b /* [ */) return prepIpLiteral(s);

  const status = scanAsciiDomain(s);
  let out: string;
  if (status === DOMAIN_INVALID) throw new JidError('domainpart is not a valid domain name');
  if (status === DOMAIN_NON_ASCII) {
    out = prepIdnDomain(s);
  } else {
    // An IPv4 address (RFC 3986 IPv4address) is also a valid sequence of LDH
    // labels, so it needs no branch of its own.
    const d = status & DOMAIN_UPPER ? s.toLowerCase() : s;
    out = status & DOMAIN_ALABEL ? prepIdnDomain(d) : d;
  }
  checkLength(out, 'domainpart');
  return out;
}

// ---------------------------------------------------------------------------
// Jid

/**
 * Parsed JIDs by their input string. Preparation (PRECIS) costs far more than a lookup and
 * the same few JIDs are parsed over and over (every stanza's 'to', every roster contact on
 * every broadcast); a Jid is immutable, so one object can serve every caller. Bounded: the
 * oldest entry goes first.
 */
const PARSED = new Map<string, Jid>();
const PARSED_MAX = 8192;

export class Jid {
  readonly local: string;
  readonly domain: string;
  readonly resource: string;
  private fullCache: string | undefined;
  private bareStringCache: string | undefined;
  private bareCache: Jid | undefined;

  /** Builds a JID from parts that are already prepared; nothing is checked. */
  constructor(local: string, domain: string, resource = '') {
    this.local = local;
    this.domain = domain;
    this.resource = resource;
  }

  /** Parses and prepares a JID string (RFC 7622 §3.1). Throws JidError. */
  static parse(s: string): Jid {
    let jid = PARSED.get(s);
    if (jid === undefined) {
      jid = Jid.prepare(s);
      if (PARSED.size >= PARSED_MAX) PARSED.delete(PARSED.keys().next().value as string);
      PARSED.set(s, jid);
    }
    return jid;
  }

  private static prepare(s: string): Jid {
    // §3.1: the resourcepart starts at the first "/", then the localpart ends
    // at the first "@" before it; a resourcepart may contain "@" and "/".
    const slash = s.indexOf('/');
    const head = slash < 0 ? s : s.slice(0, slash);
    const resource = slash < 0 ? '' : prepResourcepart(s.slice(slash + 1));
    const at = head.indexOf('@');
    const local = at < 0 ? '' : prepLocalpart(head.slice(0, at));
    const domain = prepDomainpart(at < 0 ? head : head.slice(at + 1));
    return new Jid(local, domain, resource);
  }

  /** The JID without its resourcepart (this JID itself when already bare). */
  get bare(): Jid {
    if (this.resource === '') return this;
    return (this.bareCache ??= new Jid(this.local, this.domain));
  }

  isBare(): boolean {
    return this.resource === '';
  }

  bareString(): string {
    return (this.bareStringCache ??= this.local === '' ? this.domain : `${this.local}@${this.domain}`);
  }

  toString(): string {
    return (this.fullCache ??= this.resource === '' ? this.bareString() : `${this.bareString()}/${this.resource}`);
  }

  /** Serialised as its string form (logs, JSON). */
  toJSON(): string {
    return this.toString();
  }

  /** RFC 7622 §3.2.3/§3.3.3/§3.4.3: prepared parts compare code point by code point. */
  equals(other: Jid): boolean {
    return (
      this === other ||
      (this.domain === other.domain && this.local === other.local && this.resource === other.resource)
    );
  }
}

/** Jid.parse that returns undefined instead of throwing JidError. */
export function tryParseJid(s: string): Jid | undefined {
  try {
    return Jid.parse(s);
  } catch (e) {
    if (e instanceof JidError) return undefined;
    throw e;
  }
}
