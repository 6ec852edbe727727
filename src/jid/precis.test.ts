import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DerivedProperty,
  PrecisError,
  bidiClass,
  bidiRuleHolds,
  codePoints,
  idnaProperty,
  mapWidth,
  opaqueString,
  precisProperty,
  usernameCaseMapped,
} from './precis.js';

const { PVALID, FREE_PVAL, CONTEXTJ, CONTEXTO, DISALLOWED, UNASSIGNED } = DerivedProperty;

describe('precisProperty (RFC 8264 §8)', () => {
  const cases: [number, number, string][] = [
    [0x61, PVALID, 'ASCII7'],
    [0x21, PVALID, 'ASCII7 punctuation'],
    [0x20, FREE_PVAL, 'U+0020 is Zs (Spaces), not ASCII7'],
    [0x09, DISALLOWED, 'Controls'],
    [0x7f, DISALLOWED, 'Controls'],
    [0x85, DISALLOWED, 'Controls (C1)'],
    [0xe9, PVALID, 'LetterDigits (Ll)'],
    [0x3c0, PVALID, 'LetterDigits (GREEK SMALL LETTER PI)'],
    [0x301, PVALID, 'LetterDigits (Mn)'],
    [0x0661, CONTEXTO, 'Exceptions: ARABIC-INDIC DIGIT ONE'],
    [0xdf, PVALID, 'Exceptions: sharp s'],
    [0x3c2, PVALID, 'Exceptions: final sigma'],
    [0x640, DISALLOWED, 'Exceptions: ARABIC TATWEEL'],
    [0xb7, CONTEXTO, 'Exceptions: MIDDLE DOT'],
    [0x200c, CONTEXTJ, 'JoinControl'],
    [0x200d, CONTEXTJ, 'JoinControl'],
    [0x1100, DISALLOWED, 'OldHangulJamo'],
    [0xd7b0, DISALLOWED, 'OldHangulJamo'],
    [0xac00, PVALID, 'precomposed Hangul syllable'],
    [0xad, DISALLOWED, 'PrecisIgnorableProperties (Default_Ignorable)'],
    [0x200b, DISALLOWED, 'PrecisIgnorableProperties (Default_Ignorable)'],
    [0xfdd0, DISALLOWED, 'PrecisIgnorableProperties (Noncharacter), not UNASSIGNED'],
    [0xffff, DISALLOWED, 'PrecisIgnorableProperties (Noncharacter)'],
    [0x378, UNASSIGNED, 'Unassigned'],
    [0xe000, DISALLOWED, 'private use falls through to DISALLOWED'],
    [0xd800, DISALLOWED, 'surrogate falls through to DISALLOWED'],
    [0x2028, DISALLOWED, 'Zl falls through to DISALLOWED'],
    [0xa0, FREE_PVAL, 'HasCompat (NO-BREAK SPACE)'],
    [0x2163, FREE_PVAL, 'HasCompat (ROMAN NUMERAL FOUR)'],
    [0xfb00, FREE_PVAL, 'HasCompat (ff ligature)'],
    [0xff21, FREE_PVAL, 'HasCompat (FULLWIDTH A)'],
    [0x1c5, FREE_PVAL, 'HasCompat (titlecase Dž)'],
    [0x20dd, FREE_PVAL, 'OtherLetterDigits (Me)'],
    [0x16ee, FREE_PVAL, 'OtherLetterDigits (Nl)'],
    [0x2003, FREE_PVAL, 'Spaces / HasCompat (EM SPACE)'],
    [0x265a, FREE_PVAL, 'Symbols (So)'],
    [0x1f600, FREE_PVAL, 'Symbols (emoji)'],
    [0x20ac, FREE_PVAL, 'Symbols (Sc)'],
    [0x2010, FREE_PVAL, 'Punctuation (Pd)'],
    [0x600, DISALLOWED, 'Cf that is not default-ignorable'],
  ];
  for (const [cp, expected, why] of cases) {
    it(`U+${cp.toString(16).toUpperCase().padStart(4, '0')} — ${why}`, () => {
      assert.equal(precisProperty(cp), expected);
    });
  }
});

describe('idnaProperty (RFC 5892 §3)', () => {
  const cases: [number, number, string][] = [
    [0x61, PVALID, 'LDH'],
    [0x2d, PVALID, 'LDH hyphen'],
    [0x41, DISALLOWED, 'uppercase is Unstable'],
    [0x5f, DISALLOWED, 'underscore is not LDH'],
    [0xfc, PVALID, 'ü'],
    [0xdf, PVALID, 'Exceptions'],
    [0x3c2, PVALID, 'Exceptions'],
    [0xc0, DISALLOWED, 'uppercase À is Unstable'],
    [0xa0, DISALLOWED, 'NO-BREAK SPACE'],
    [0x20d0, DISALLOWED, 'IgnorableBlocks'],
    [0x1d165, DISALLOWED, 'IgnorableBlocks (musical symbols)'],
    [0x265a, DISALLOWED, 'symbols are not LetterDigits'],
    [0x1100, DISALLOWED, 'OldHangulJamo'],
    [0x378, UNASSIGNED, 'Unassigned'],
    [0x200d, CONTEXTJ, 'JoinControl'],
  ];
  for (const [cp, expected, why] of cases) {
    it(`U+${cp.toString(16).toUpperCase().padStart(4, '0')} — ${why}`, () => {
      assert.equal(idnaProperty(cp), expected);
    });
  }

  it('every IDNA2008 PVALID code point is PVALID in the PRECIS IdentifierClass', () => {
    // RFC 8264 §4.2 builds IdentifierClass on the IDNA2008 repertoire; a
    // violation would point at a wrong category in one of the two functions.
    const offenders: string[] = [];
    for (let cp = 0; cp <= 0x10ffff; cp++) {
      if (idnaProperty(cp) === PVALID && precisProperty(cp) !== PVALID) offenders.push(cp.toString(16));
    }
    assert.deepEqual(offenders, []);
  });
});

describe('bidiClass and the Bidi Rule (RFC 5893 §2)', () => {
  it('classifies code points', () => {
    assert.equal(bidiClass(0x61), 'L');
    assert.equal(bidiClass(0x31), 'EN');
    assert.equal(bidiClass(0x5d0), 'R');
    assert.equal(bidiClass(0x628), 'AL');
    assert.equal(bidiClass(0x661), 'AN');
    assert.equal(bidiClass(0x6f1), 'EN');
    assert.equal(bidiClass(0x301), 'NSM');
    assert.equal(bidiClass(0x2d), 'ES');
    assert.equal(bidiClass(0x2e), 'CS');
    assert.equal(bidiClass(0x20), 'WS');
    assert.equal(bidiClass(0x5eb), 'R', 'unassigned in the Hebrew block defaults to R');
  });

  const rule = (s: string): boolean => bidiRuleHolds(codePoints(s));
  it('accepts well-formed RTL and LTR labels', () => {
    assert.ok(rule('אב'));
    assert.ok(rule('אב1'), 'RTL label may end with EN');
    assert.ok(rule('א\u05b0'), 'trailing NSM');
    assert.ok(rule('abc'));
    assert.ok(rule('a1'));
  });
  it('rejects each violated condition', () => {
    assert.ok(!rule('1אב'), '1: first character must be L, R or AL');
    assert.ok(!rule('אבa'), '2: no L in an RTL label');
    assert.ok(!rule('אב-'), '3: RTL label must end with R, AL, EN or AN');
    assert.ok(!rule('ب1١'), '4: EN and AN together');
    assert.ok(!rule('aאב'), '5: no R in an LTR label');
    assert.ok(!rule('a-'), '6: LTR label must end with L or EN');
  });
});

describe('usernameCaseMapped (RFC 8265 §3.3)', () => {
  const ok: [string, string, string][] = [
    ['juliet', 'juliet', 'ASCII fast path'],
    ['Juliet', 'juliet', 'case mapping on the ASCII path'],
    ['foo\\20bar', 'foo\\20bar', 'backslash is ASCII7'],
    ['ＪＵＬＩＥＴ', 'juliet', 'fullwidth to ASCII, then lowercase'],
    ['ｶﾞ', 'ガ', 'halfwidth katakana and voiced mark compose under NFC'],
    ['E\u0301', 'é', 'lowercase then NFC'],
    ['Σ', 'σ', 'capital sigma lowercases to sigma'],
    ['ς', 'ς', 'final sigma is not folded'],
    ['fußball', 'fußball', 'sharp s is not folded to ss'],
    ['ÅNGSTRÖM', 'ångström', 'non-ASCII uppercase'],
    ['\u212b', 'å', 'ANGSTROM SIGN lowercases and normalises to å'],
    ['İ', 'i\u0307', 'Unicode toLowerCase of U+0130'],
    ['l·l', 'l·l', 'A.3 MIDDLE DOT between two l'],
    ['͵α', '͵α', 'A.4 KERAIA before Greek'],
    ['א׳', 'א׳', 'A.5 GERESH after Hebrew'],
    ['カ・a', 'カ・a', 'A.7 KATAKANA MIDDLE DOT with a Katakana character'],
    ['क्\u200dष', 'क्\u200dष', 'A.2 ZWJ after a virama'],
    ['क्\u200cष', 'क्\u200cष', 'A.1 ZWNJ after a virama'],
    ['ب\u200cب', 'ب\u200cب', 'A.1 ZWNJ between dual-joining letters'],
    ['ب١٢', 'ب١٢', 'A.8 Arabic-Indic digits without extended ones'],
    ['אב1', 'אב1', 'Bidi Rule holds'],
    ['가', '가', 'precomposed Hangul'],
    ['\u1100\u1161', '가', 'conjoining jamo compose under NFC before the check'],
  ];
  for (const [input, expected, why] of ok) {
    it(`maps ${JSON.stringify(input)} — ${why}`, () => {
      assert.equal(usernameCaseMapped(input), expected);
      // Idempotent: the output prepares to itself.
      assert.equal(usernameCaseMapped(expected), expected);
    });
  }

  const bad: [string, string, RegExp?][] = [
    ['', 'empty'],
    ['foo bar', 'U+0020 is not in IdentifierClass'],
    ['a\u00a0b', 'NO-BREAK SPACE (HasCompat / Spaces)'],
    ['henry\u2163', 'ROMAN NUMERAL FOUR (HasCompat)'],
    ['\ufb00', 'ff ligature (HasCompat)'],
    ['♚', 'symbol'],
    ['😀', 'emoji'],
    ['a\tb', 'control'],
    ['a\u0000', 'NUL'],
    ['\u0378', 'unassigned'],
    ['\ue000', 'private use'],
    ['\ufdd0', 'noncharacter'],
    ['a\u00adb', 'SOFT HYPHEN (default ignorable)'],
    ['a\u200bb', 'ZERO WIDTH SPACE'],
    ['\u202e', 'RIGHT-TO-LEFT OVERRIDE'],
    ['\u1100', 'old Hangul jamo'],
    ['\u0640', 'TATWEEL (exception, disallowed)'],
    ['\ud800', 'unpaired surrogate'],
    ['a\udc00', 'unpaired low surrogate'],
    ['a·b', 'MIDDLE DOT outside l·l', /out of context/],
    ['͵a', 'KERAIA before non-Greek', /out of context/],
    ['׳א', 'GERESH not after Hebrew', /out of context/],
    ['a・b', 'KATAKANA MIDDLE DOT without Japanese', /out of context/],
    ['a\u200db', 'ZWJ without virama', /out of context/],
    ['a\u200cb', 'ZWNJ without joining context', /out of context/],
    ['ب١۲', 'A.8/A.9 Arabic-Indic with extended Arabic-Indic digits', /out of context/],
    ['١٢', 'Bidi Rule: a string of AN digits has no L, R or AL first', /Bidi Rule/],
    ['אבa', 'Bidi Rule: L in an RTL string', /Bidi Rule/],
    ['aאב', 'Bidi Rule: R in an LTR string', /Bidi Rule/],
    ['1אב', 'Bidi Rule: RTL string starting with EN', /Bidi Rule/],
  ];
  for (const [input, why, message] of bad) {
    it(`rejects ${JSON.stringify(input)} — ${why}`, () => {
      assert.throws(() => usernameCaseMapped(input), (e: unknown) => {
        assert.ok(e instanceof PrecisError);
        if (message) assert.match(e.message, message);
        return true;
      });
    });
  }
});

describe('opaqueString (RFC 8265 §4.2)', () => {
  const ok: [string, string, string][] = [
    ['Correct Horse Battery Staple', 'Correct Horse Battery Staple', 'ASCII with spaces and case kept'],
    [' foo', ' foo', 'leading space is FREE_PVAL'],
    ['πßå', 'πßå', 'letters'],
    ['Jack of ♦s', 'Jack of ♦s', 'symbols'],
    ['foo\u1680bar', 'foo bar', 'OGHAM SPACE MARK to U+0020'],
    ['a\u00a0b\u3000c', 'a b c', 'NO-BREAK SPACE and IDEOGRAPHIC SPACE to U+0020'],
    ['Ｆｏｏ', 'Ｆｏｏ', 'no width mapping'],
    ['\u2163', '\u2163', 'HasCompat is FREE_PVAL'],
    ['\ufb00', '\ufb00', 'ligature is FREE_PVAL'],
    ['😀', '😀', 'emoji'],
    ['E\u0301', 'É', 'NFC'],
    ['a@b/c', 'a@b/c', 'delimiters are fine in FreeformClass'],
  ];
  for (const [input, expected, why] of ok) {
    it(`maps ${JSON.stringify(input)} — ${why}`, () => {
      assert.equal(opaqueString(input), expected);
      assert.equal(opaqueString(expected), expected);
    });
  }

  const bad: [string, string][] = [
    ['', 'empty'],
    ['\t', 'control'],
    ['a\u0000', 'NUL'],
    ['\u007f', 'DEL'],
    ['\u0085', 'C1 control'],
    ['\u00ad', 'default ignorable'],
    ['\ue000', 'private use'],
    ['\u0378', 'unassigned'],
    ['a\u2028b', 'LINE SEPARATOR'],
    ['\ud800', 'unpaired surrogate'],
    ['a\u200db', 'ZWJ without virama'],
    ['a·b', 'MIDDLE DOT outside l·l'],
  ];
  for (const [input, why] of bad) {
    it(`rejects ${JSON.stringify(input)} — ${why}`, () => {
      assert.throws(() => opaqueString(input), PrecisError);
    });
  }
});

describe('mapWidth (RFC 8265 §3.3.1)', () => {
  it('maps <wide> and <narrow> code points to their decomposition mapping only', () => {
    assert.equal(mapWidth('ＡＢＣ１２３'), 'ABC123');
    assert.equal(mapWidth('\u3000'), ' ');
    assert.equal(mapWidth('ｶ'), 'カ');
    // U+FFE3 FULLWIDTH MACRON maps to U+00AF, not on to its own compatibility form.
    assert.equal(mapWidth('\uffe3'), '\u00af');
    assert.equal(mapWidth('ﬀ'), 'ﬀ', 'other compatibility mappings are not width mappings');
    const s = 'plain';
    assert.equal(mapWidth(s), s);
  });
});

describe('ASCII fast paths agree with the general code path', () => {
  // A leading "é" forces the general path (derived property, mapping, NFC);
  // the verdict and mapping for each ASCII character must be the same.
  const attempt = (f: (s: string) => string, s: string): string | undefined => {
    try {
      return f(s);
    } catch (e) {
      assert.ok(e instanceof PrecisError);
      return undefined;
    }
  };
  for (const [name, f] of [
    ['usernameCaseMapped', usernameCaseMapped],
    ['opaqueString', opaqueString],
  ] as const) {
    it(name, () => {
      for (let c = 0; c < 128; c++) {
        const ch = String.fromCharCode(c);
        const fast = attempt(f, `a${ch}a`);
        const slow = attempt(f, `é${ch}a`);
        assert.equal(slow === undefined, fast === undefined, `U+${c.toString(16)}`);
        if (fast !== undefined) assert.equal(slow!.slice(1), fast.slice(1), `U+${c.toString(16)}`);
      }
    });
  }
});
