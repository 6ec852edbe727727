// PRECIS (RFC 8264) string classes and the two RFC 8265 profiles XMPP and SASL
// need: UsernameCaseMapped (JID localparts, SASL usernames) and OpaqueString
// (JID resourceparts, passwords). Also the IDNA2008 (RFC 5892) code point
// property, the RFC 5892 Appendix A contextual rules and the RFC 5893 Bidi
// Rule, which the JID domainpart shares with these profiles.
//
// Errors: usernameCaseMapped() and opaqueString() throw PrecisError. The JID
// layer (jid.ts) rethrows them as JidError.
//
// Unicode data: General_Category, Script and binary properties come from the
// engine's ICU through regex property escapes (always Node's Unicode version).
// Bidi_Class, Joining_Type, Virama and width mappings are not exposed to
// JavaScript and come from unicode-tables.ts (generated, UCD_VERSION there).
import { BIDI_CLASS_RANGES, JOINING_TYPE_RANGES, VIRAMAS, WIDTH_MAPPINGS } from './unicode-tables.js';

export class PrecisError extends Error {
  override name = 'PrecisError';
}

// ---------------------------------------------------------------------------
// Derived property values (RFC 8264 §8, RFC 5892 §3)

/** Values of the derived property (RFC 8264 §8, RFC 5892 §3). */
export const DerivedProperty = {
  PVALID: 1,
  /** ID_DIS in IdentifierClass, FREE_PVAL in FreeformClass (RFC 8264 §8). */
  FREE_PVAL: 2,
  CONTEXTJ: 3,
  CONTEXTO: 4,
  DISALLOWED: 5,
  UNASSIGNED: 6,
} as const;
export type DerivedPropertyValue = (typeof DerivedProperty)[keyof typeof DerivedProperty];
type Prop = DerivedPropertyValue;
const { PVALID, FREE_PVAL, CONTEXTJ, CONTEXTO, DISALLOWED, UNASSIGNED } = DerivedProperty;

// RFC 5892 §2.6 Exceptions (F), reused unchanged by RFC 8264 §9.6.
const EXCEPTIONS = new Map<number, Prop>([
  [0x00df, PVALID], [0x03c2, PVALID], [0x06fd, PVALID], [0x06fe, PVALID], [0x0f0b, PVALID], [0x3007, PVALID],
  [0x00b7, CONTEXTO], [0x0375, CONTEXTO], [0x05f3, CONTEXTO], [0x05f4, CONTEXTO], [0x30fb, CONTEXTO],
  [0x0640, DISALLOWED], [0x07fa, DISALLOWED], [0x302e, DISALLOWED], [0x302f, DISALLOWED],
  [0x3031, DISALLOWED], [0x3032, DISALLOWED], [0x3033, DISALLOWED], [0x3034, DISALLOWED], [0x3035, DISALLOWED],
  [0x303b, DISALLOWED],
]);
for (let cp = 0x0660; cp <= 0x0669; cp++) EXCEPTIONS.set(cp, CONTEXTO);
for (let cp = 0x06f0; cp <= 0x06f9; cp++) EXCEPTIONS.set(cp, CONTEXTO);

// RFC 8264 §9.10 / RFC 5892 §2.10 Unassigned (J): Cn that is not a noncharacter.
const RE_CN = /^\p{Cn}$/u;
const RE_NONCHARACTER = /^\p{Noncharacter_Code_Point}$/u;
// RFC 8264 §9.13 PrecisIgnorableProperties (M).
const RE_PRECIS_IGNORABLE = /^[\p{Default_Ignorable_Code_Point}\p{Noncharacter_Code_Point}]$/u;
// RFC 5892 §2.3 IgnorableProperties (C) adds White_Space.
const RE_IDNA_IGNORABLE = /^[\p{Default_Ignorable_Code_Point}\p{White_Space}\p{Noncharacter_Code_Point}]$/u;
// RFC 8264 §9.12 Controls (L).
const RE_CONTROL = /^\p{Cc}$/u;
// RFC 8264 §9.1 / RFC 5892 §2.1 LetterDigits (A).
const RE_LETTER_DIGITS = /^[\p{Ll}\p{Lu}\p{Lo}\p{Nd}\p{Lm}\p{Mn}\p{Mc}]$/u;
// RFC 8264 §9.18 OtherLetterDigits (R), §9.14 Spaces (N), §9.15 Symbols (O),
// §9.16 Punctuation (P): all ID_DIS / FREE_PVAL, so one class suffices.
const RE_FREEFORM_EXTRA = /^[\p{Lt}\p{Nl}\p{No}\p{Me}\p{Zs}\p{Sm}\p{Sc}\p{Sk}\p{So}\p{P}]$/u;
// RFC 5892 §2.2 Unstable (B): toNFKC(toCaseFold(toNFKC(cp))) != cp. The
// NFKC_Casefold property differs only for default-ignorables, which IDNA2008
// disallows anyway.
const RE_UNSTABLE = /^\p{Changes_When_NFKC_Casefolded}$/u;

/** RFC 8264 §9.9 / RFC 5892 §2.9 OldHangulJamo (I): Hangul_Syllable_Type L, V or T. */
function isOldHangulJamo(cp: number): boolean {
  return (
    (cp >= 0x1100 && cp <= 0x11ff) ||
    (cp >= 0xa960 && cp <= 0xa97c) ||
    (cp >= 0xd7b0 && cp <= 0xd7c6) ||
    (cp >= 0xd7cb && cp <= 0xd7fb)
  );
}

/** RFC 5892 §2.4 IgnorableBlocks (D). */
function isIgnorableBlock(cp: number): boolean {
  return (cp >= 0x20d0 && cp <= 0x20ff) || (cp >= 0x1d100 && cp <= 0x1d24f);
}

// Property lookups run per non-ASCII code point and involve several regex tests
// and a normalisation; a lazily allocated byte per code point (1.1 MB each)
// makes repeats free. 0 = not computed yet.
let precisCache: Uint8Array | undefined;
let idnaCache: Uint8Array | undefined;

/** RFC 8264 §8 derived property, shared by IdentifierClass and FreeformClass. */
export function precisProperty(cp: number): Prop {
  precisCache ??= new Uint8Array(0x110000);
  const cached = precisCache[cp]!;
  if (cached !== 0) return cached as Prop;
  const p = computePrecisProperty(cp);
  precisCache[cp] = p;
  return p;
}

function computePrecisProperty(cp: number): Prop {
  const exception = EXCEPTIONS.get(cp);
  if (exception !== undefined) return exception;
  // BackwardCompatible (RFC 8264 §9.7) is empty.
  const ch = String.fromCodePoint(cp);
  if (RE_CN.test(ch) && !RE_NONCHARACTER.test(ch)) return UNASSIGNED;
  if (cp >= 0x21 && cp <= 0x7e) return PVALID; // ASCII7 (K)
  if (cp === 0x200c || cp === 0x200d) return CONTEXTJ; // JoinControl (H)
  if (isOldHangulJamo(cp)) return DISALLOWED;
  if (RE_PRECIS_IGNORABLE.test(ch)) return DISALLOWED;
  if (RE_CONTROL.test(ch)) return DISALLOWED;
  if (ch.normalize('NFKC') !== ch) return FREE_PVAL; // HasCompat (Q), RFC 8264 §9.17
  if (RE_LETTER_DIGITS.test(ch)) return PVALID;
  if (RE_FREEFORM_EXTRA.test(ch)) return FREE_PVAL;
  return DISALLOWED;
}

/** RFC 5892 §3 derived property (IDNA2008), for domainpart U-labels. */
export function idnaProperty(cp: number): Prop {
  idnaCache ??= new Uint8Array(0x110000);
  const cached = idnaCache[cp]!;
  if (cached !== 0) return cached as Prop;
  const p = computeIdnaProperty(cp);
  idnaCache[cp] = p;
  return p;
}

function computeIdnaProperty(cp: number): Prop {
  const exception = EXCEPTIONS.get(cp);
  if (exception !== undefined) return exception;
  const ch = String.fromCodePoint(cp);
  if (RE_CN.test(ch) && !RE_NONCHARACTER.test(ch)) return UNASSIGNED;
  // LDH (E): lowercase letters, digits, hyphen.
  if ((cp >= 0x61 && cp <= 0x7a) || (cp >= 0x30 && cp <= 0x39) || cp === 0x2d) return PVALID;
  if (cp === 0x200c || cp === 0x200d) return CONTEXTJ;
  if (RE_UNSTABLE.test(ch)) return DISALLOWED;
  if (RE_IDNA_IGNORABLE.test(ch)) return DISALLOWED;
  if (isIgnorableBlock(cp)) return DISALLOWED;
  if (isOldHangulJamo(cp)) return DISALLOWED;
  if (RE_LETTER_DIGITS.test(ch)) return PVALID;
  return DISALLOWED;
}

/**
 * Index of the first code point of a U-label that IDNA2008 does not allow: not
 * PVALID, or CONTEXTJ/CONTEXTO without its rule holding (RFC 5891 §4.2.3.3,
 * §5.4). -1 when all are allowed.
 */
export function firstInvalidIdnaCodePoint(cps: readonly number[]): number {
  for (let i = 0; i < cps.length; i++) {
    const p = idnaProperty(cps[i]!);
    if (p === PVALID) continue;
    if ((p === CONTEXTJ || p === CONTEXTO) && contextRuleHolds(cps, i)) continue;
    return i;
  }
  return -1;
}

// ---------------------------------------------------------------------------
// Generated tables

interface RangeTable {
  starts: Uint32Array;
  ends: Uint32Array;
  values: string[];
}

function parseRanges(spec: string): RangeTable {
  const items = spec.split(',');
  const table: RangeTable = {
    starts: new Uint32Array(items.length),
    ends: new Uint32Array(items.length),
    values: new Array<string>(items.length),
  };
  items.forEach((item, i) => {
    const [range, value] = item.split(':') as [string, string];
    const dash = range.indexOf('-');
    const start = parseInt(dash < 0 ? range : range.slice(0, dash), 16);
    table.starts[i] = start;
    table.ends[i] = dash < 0 ? start : parseInt(range.slice(dash + 1), 16);
    table.values[i] = value;
  });
  return table;
}

function lookupRange(table: RangeTable, cp: number): string | undefined {
  let lo = 0;
  let hi = table.starts.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (cp < table.starts[mid]!) hi = mid - 1;
    else if (cp > table.ends[mid]!) lo = mid + 1;
    else return table.values[mid];
  }
  return undefined;
}

let bidiTable: RangeTable | undefined;
let joiningTable: RangeTable | undefined;
let viramaSet: Set<number> | undefined;
let widthMap: Map<number, string> | undefined;

const RE_MARK_NSM = /^[\p{Mn}\p{Me}]$/u;
const RE_TRANSPARENT = /^[\p{Mn}\p{Me}\p{Cf}]$/u;

/** Bidi_Class (UAX #9) short name of a code point. */
export function bidiClass(cp: number): string {
  bidiTable ??= parseRanges(BIDI_CLASS_RANGES);
  return lookupRange(bidiTable, cp) ?? (RE_MARK_NSM.test(String.fromCodePoint(cp)) ? 'NSM' : 'L');
}

function joiningType(cp: number): string {
  joiningTable ??= parseRanges(JOINING_TYPE_RANGES);
  return lookupRange(joiningTable, cp) ?? (RE_TRANSPARENT.test(String.fromCodePoint(cp)) ? 'T' : 'U');
}

function isVirama(cp: number | undefined): boolean {
  viramaSet ??= new Set(VIRAMAS.split(',').map((h) => parseInt(h, 16)));
  return cp !== undefined && viramaSet.has(cp);
}

// ---------------------------------------------------------------------------
// Contextual rules (RFC 5892 Appendix A), required for CONTEXTJ and CONTEXTO
// code points by RFC 8264 §4.2 / §4.3 and RFC 5891 §4.2.3.3.

const RE_GREEK = /^\p{Script=Greek}$/u;
const RE_HEBREW = /^\p{Script=Hebrew}$/u;
const RE_KANA_HAN = /^[\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Han}]$/u;

function scriptIs(re: RegExp, cp: number | undefined): boolean {
  return cp !== undefined && re.test(String.fromCodePoint(cp));
}

/** Whether the contextual rule for cps[i] holds within cps (a string or label). */
export function contextRuleHolds(cps: readonly number[], i: number): boolean {
  const cp = cps[i]!;
  const before = cps[i - 1];
  const after = cps[i + 1];
  switch (cp) {
    case 0x200c: {
      // A.1 ZERO WIDTH NON-JOINER
      if (isVirama(before)) return true;
      // (Joining_Type:{L,D})(Joining_Type:T)*\u200C(Joining_Type:T)*(Joining_Type:{R,D})
      let j = i - 1;
      while (j >= 0 && joiningType(cps[j]!) === 'T') j--;
      if (j < 0) return false;
      const left = joiningType(cps[j]!);
      if (left !== 'L' && left !== 'D') return false;
      let k = i + 1;
      while (k < cps.length && joiningType(cps[k]!) === 'T') k++;
      if (k >= cps.length) return false;
      const right = joiningType(cps[k]!);
      return right === 'R' || right === 'D';
    }
    case 0x200d: // A.2 ZERO WIDTH JOINER
      return isVirama(before);
    case 0x00b7: // A.3 MIDDLE DOT, only in Catalan "l·l"
      return before === 0x6c && after === 0x6c;
    case 0x0375: // A.4 GREEK LOWER NUMERAL SIGN (KERAIA)
      return scriptIs(RE_GREEK, after);
    case 0x05f3: // A.5 HEBREW PUNCTUATION GERESH
    case 0x05f4: // A.6 HEBREW PUNCTUATION GERSHAYIM
      return scriptIs(RE_HEBREW, before);
    case 0x30fb: // A.7 KATAKANA MIDDLE DOT
      return cps.some((c) => c !== 0x30fb && scriptIs(RE_KANA_HAN, c));
    default:
      if (cp >= 0x0660 && cp <= 0x0669) return !cps.some((c) => c >= 0x06f0 && c <= 0x06f9); // A.8
      if (cp >= 0x06f0 && cp <= 0x06f9) return !cps.some((c) => c >= 0x0660 && c <= 0x0669); // A.9
      return false; // no rule defined: not allowed
  }
}

// ---------------------------------------------------------------------------
// Bidi Rule (RFC 5893 §2)

/** Whether the string contains a right-to-left character (R, AL or AN, RFC 5893 §1.4). */
export function hasRtl(cps: readonly number[]): boolean {
  for (const cp of cps) {
    if (cp < 0x0590) continue; // nothing below the Hebrew block is R, AL or AN
    const c = bidiClass(cp);
    if (c === 'R' || c === 'AL' || c === 'AN') return true;
  }
  return false;
}

const RTL_ALLOWED = new Set(['R', 'AL', 'AN', 'EN', 'ES', 'CS', 'ET', 'ON', 'BN', 'NSM']);
const LTR_ALLOWED = new Set(['L', 'EN', 'ES', 'CS', 'ET', 'ON', 'BN', 'NSM']);

/** The six conditions of the RFC 5893 §2 Bidi Rule. */
export function bidiRuleHolds(cps: readonly number[]): boolean {
  if (cps.length === 0) return false;
  const classes = cps.map(bidiClass);
  const first = classes[0]!;
  // 1. first character L, R or AL
  const rtl = first === 'R' || first === 'AL';
  if (!rtl && first !== 'L') return false;
  // 2./5. allowed classes
  const allowed = rtl ? RTL_ALLOWED : LTR_ALLOWED;
  if (!classes.every((c) => allowed.has(c))) return false;
  // 3./6. last non-NSM character
  let end = classes.length - 1;
  while (end >= 0 && classes[end] === 'NSM') end--;
  const last = classes[end];
  if (rtl) {
    if (last !== 'R' && last !== 'AL' && last !== 'EN' && last !== 'AN') return false;
    // 4. not both EN and AN
    if (classes.includes('EN') && classes.includes('AN')) return false;
  } else if (last !== 'L' && last !== 'EN') {
    return false;
  }
  return true;
}

// ---------------------------------------------------------------------------
// Mapping helpers

const RE_WIDE_NARROW = /[\u3000\uff01-\uffee]/;

/** RFC 8265 §3.3.1 width mapping: <wide>/<narrow> code points to their decomposition. */
export function mapWidth(s: string): string {
  if (!RE_WIDE_NARROW.test(s)) return s;
  widthMap ??= new Map(
    WIDTH_MAPPINGS.split(',').map((item) => {
      const [from, to] = item.split(':') as [string, string];
      return [parseInt(from, 16), String.fromCodePoint(parseInt(to, 16))];
    }),
  );
  let out = '';
  for (const ch of s) out += widthMap.get(ch.codePointAt(0)!) ?? ch;
  return out;
}

const RE_NON_ASCII_SPACE = /(?!\x20)\p{Zs}/gu;
const RE_LONE_SURROGATE = /\p{Cs}/u;

/** The code points of a string. */
export function codePoints(s: string): number[] {
  const cps: number[] = [];
  for (const ch of s) cps.push(ch.codePointAt(0)!);
  return cps;
}

/**
 * RFC 8264 §7: mapping is not necessarily idempotent, so apply the rules until
 * the output is stable, giving up after three re-applications.
 */
function untilStable(s: string, apply: (x: string) => string): string {
  let prev = s;
  for (let round = 0; round < 4; round++) {
    const next = apply(prev);
    if (next === prev) return next;
    prev = next;
  }
  throw new PrecisError('string does not stabilise under the profile rules (RFC 8264 §7)');
}

/** Throws unless every code point is valid in the class (RFC 8264 §4.2 / §4.3). */
function enforceClass(cps: readonly number[], freeform: boolean, what: string): void {
  for (let i = 0; i < cps.length; i++) {
    const p = precisProperty(cps[i]!);
    if (p === PVALID || (freeform && p === FREE_PVAL)) continue;
    if ((p === CONTEXTJ || p === CONTEXTO) && contextRuleHolds(cps, i)) continue;
    const hex = cps[i]!.toString(16).toUpperCase().padStart(4, '0');
    const reason = p === UNASSIGNED ? 'unassigned' : p === CONTEXTJ || p === CONTEXTO ? 'out of context' : 'disallowed';
    throw new PrecisError(`${what}: U+${hex} is ${reason}`);
  }
}

// ASCII fast-path tables: 1 = valid as is, 2 = uppercase (lowercased by the profile).
const ASCII_USERNAME = new Uint8Array(128);
const ASCII_OPAQUE = new Uint8Array(128);
for (let c = 0x20; c <= 0x7e; c++) {
  // U+0020 is Zs: ID_DIS in IdentifierClass, FREE_PVAL in FreeformClass.
  if (c !== 0x20) ASCII_USERNAME[c] = c >= 0x41 && c <= 0x5a ? 2 : 1;
  ASCII_OPAQUE[c] = 1;
}

/**
 * Checks an all-ASCII string against an ASCII table. Returns 0 if invalid,
 * 1 if valid unchanged, 2 if valid but it contains uppercase, -1 if non-ASCII.
 */
export function asciiScan(s: string, table: Uint8Array): number {
  let result = 1;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) return -1;
    const v = table[c]!;
    if (v === 0) return 0;
    if (v === 2) result = 2;
  }
  return result;
}

// ---------------------------------------------------------------------------
// Profiles (RFC 8265)

/**
 * RFC 8265 §3.3 UsernameCaseMapped: width mapping, toLowerCase, NFC, then the
 * IdentifierClass and the Bidi Rule. Throws PrecisError.
 */
export function usernameCaseMapped(s: string): string {
  const fast = asciiScan(s, ASCII_USERNAME);
  if (fast === 1 && s.length > 0) return s;
  if (fast === 2) return s.toLowerCase();
  if (fast === 0) throw new PrecisError('UsernameCaseMapped: disallowed ASCII character');
  if (s.length === 0) throw new PrecisError('UsernameCaseMapped: empty string');
  if (RE_LONE_SURROGATE.test(s)) throw new PrecisError('UsernameCaseMapped: unpaired surrogate');
  // §3.3.1/§3.3.2: width mapping, then case mapping (toLowerCase) and NFC.
  const out = untilStable(s, (x) => mapWidth(x).toLowerCase().normalize('NFC'));
  if (out.length === 0) throw new PrecisError('UsernameCaseMapped: empty string');
  const cps = codePoints(out);
  enforceClass(cps, false, 'UsernameCaseMapped');
  // §3.3.2: the Bidi Rule for strings containing right-to-left code points.
  if (hasRtl(cps) && !bidiRuleHolds(cps)) throw new PrecisError('UsernameCaseMapped: violates the Bidi Rule');
  return out;
}

/**
 * RFC 8265 §4.2 OpaqueString: non-ASCII spaces to U+0020, NFC, then the
 * FreeformClass. Case and width are preserved. Throws PrecisError.
 */
export function opaqueString(s: string): string {
  const fast = asciiScan(s, ASCII_OPAQUE);
  if (fast === 1 && s.length > 0) return s;
  if (fast === 0) throw new PrecisError('OpaqueString: disallowed ASCII character');
  if (s.length === 0) throw new PrecisError('OpaqueString: empty string');
  if (RE_LONE_SURROGATE.test(s)) throw new PrecisError('OpaqueString: unpaired surrogate');
  // §4.2.2: additional mapping (non-ASCII space to U+0020), then NFC.
  const out = untilStable(s, (x) => x.replace(RE_NON_ASCII_SPACE, ' ').normalize('NFC'));
  if (out.length === 0) throw new PrecisError('OpaqueString: empty string');
  enforceClass(codePoints(out), true, 'OpaqueString');
  return out;
}
