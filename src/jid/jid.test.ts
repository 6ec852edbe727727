import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Jid, JidError, prepDomainpart, prepLocalpart, prepResourcepart, tryParseJid } from './jid.js';

function parts(s: string): [string, string, string] {
  const j = Jid.parse(s);
  return [j.local, j.domain, j.resource];
}

describe('RFC 7622 §3.5 Table 1: a sample of legal JIDs', () => {
  const table1: [number, string, [string, string, string]][] = [
    [1, 'juliet@example.com', ['juliet', 'example.com', '']],
    [2, 'juliet@example.com/foo', ['juliet', 'example.com', 'foo']],
    [3, 'juliet@example.com/foo bar', ['juliet', 'example.com', 'foo bar']],
    [4, 'juliet@example.com/foo@bar', ['juliet', 'example.com', 'foo@bar']],
    [5, 'foo\\20bar@example.com', ['foo\\20bar', 'example.com', '']],
    [6, 'fussball@example.com', ['fussball', 'example.com', '']],
    [7, 'fußball@example.com', ['fußball', 'example.com', '']],
    [8, 'π@example.com', ['π', 'example.com', '']],
    [9, 'Σ@example.com/foo', ['σ', 'example.com', 'foo']],
    [10, 'σ@example.com/foo', ['σ', 'example.com', 'foo']],
    [11, 'ς@example.com/foo', ['ς', 'example.com', 'foo']],
    [12, 'king@example.com/♚', ['king', 'example.com', '♚']],
    [13, 'example.com', ['', 'example.com', '']],
    [14, 'example.com/foobar', ['', 'example.com', 'foobar']],
    [15, 'a.example.com/b@example.net', ['', 'a.example.com', 'b@example.net']],
  ];
  for (const [n, input, expected] of table1) {
    it(`example ${n}: ${JSON.stringify(input)}`, () => {
      assert.deepEqual(parts(input), expected);
    });
  }

  it('examples 6 and 7 stay distinct: UsernameCaseMapped does not fold ß to ss', () => {
    assert.ok(!Jid.parse('fussball@example.com').equals(Jid.parse('fußball@example.com')));
  });
  it('examples 9 and 10 are the same JID; 11 (final sigma) is not', () => {
    assert.ok(Jid.parse('Σ@example.com/foo').equals(Jid.parse('σ@example.com/foo')));
    assert.ok(!Jid.parse('ς@example.com/foo').equals(Jid.parse('σ@example.com/foo')));
  });
});

describe('RFC 7622 §3.5 Table 2: strings that violate the JID rules', () => {
  const table2: [number, string, RegExp][] = [
    [16, '"juliet"@example.com', /localpart/], // quotation marks, §3.3.1
    [17, 'foo bar@example.com', /localpart/], // space in localpart
    [19, '@example.com/', /resourcepart|localpart/], // empty localpart and resourcepart
    [20, 'henry\u2163@example.com', /localpart/], // ROMAN NUMERAL FOUR, compatibility character
    [21, '♚@example.com', /localpart/], // symbol in localpart
    [22, 'juliet@', /domainpart/], // no domainpart
    [23, '/foobar', /domainpart/], // no domainpart
  ];
  for (const [n, input, part] of table2) {
    it(`example ${n}: ${JSON.stringify(input)}`, () => {
      assert.throws(() => Jid.parse(input), (e: unknown) => {
        assert.ok(e instanceof JidError);
        assert.match(e.message, part);
        return true;
      });
      assert.equal(tryParseJid(input), undefined);
    });
  }

  it('example 18 "juliet@example.com/ foo" is accepted (deliberate deviation)', () => {
    // Table 2 lists a leading space in the resourcepart as invalid, but no rule
    // in RFC 7622 §3.4 or OpaqueString (RFC 8265 §4.2) forbids it: U+0020 is
    // FREE_PVAL (RFC 8264 §9.14) and nothing trims it. A server that refused
    // it would bounce stanzas that other servers route.
    assert.deepEqual(parts('juliet@example.com/ foo'), ['juliet', 'example.com', ' foo']);
  });
});

describe('splitting (RFC 7622 §3.1)', () => {
  it('takes the resourcepart from the first slash, which may hold "@" and "/"', () => {
    assert.deepEqual(parts('a@b.example/c/d@e'), ['a', 'b.example', 'c/d@e']);
    assert.deepEqual(parts('b.example//'), ['', 'b.example', '/']);
  });
  for (const input of ['', '@', '/', '@/', 'a@', '@example.com', 'example.com/', 'a@example.com/', 'a@b@example.com']) {
    it(`rejects ${JSON.stringify(input)}`, () => {
      assert.throws(() => Jid.parse(input), JidError);
    });
  }
});

describe('case mapping', () => {
  it('lowercases localpart and domainpart but keeps resourcepart case', () => {
    assert.deepEqual(parts('Juliet@Example.COM/Balcony'), ['juliet', 'example.com', 'Balcony']);
    assert.ok(Jid.parse('JULIET@EXAMPLE.COM').equals(Jid.parse('juliet@example.com')));
    assert.ok(!Jid.parse('juliet@example.com/Foo').equals(Jid.parse('juliet@example.com/foo')));
  });
  it('lowercases non-ASCII localparts and domains', () => {
    assert.deepEqual(parts('ÉLODIE@BÜCHER.EXAMPLE'), ['élodie', 'bücher.example', '']);
  });
  it('normalises to NFC', () => {
    assert.ok(Jid.parse('e\u0301@example.com/Re\u0301s').equals(Jid.parse('é@example.com/Rés')));
  });
});

describe('width mapping', () => {
  it('maps fullwidth localpart and domainpart characters to ASCII', () => {
    assert.deepEqual(parts('ＪＵＬＩＥＴ@ＥＸＡＭＰＬＥ．ｃｏｍ'), ['juliet', 'example.com', '']);
    assert.equal(prepDomainpart('example。com'), 'example.com', 'U+3002 is a label separator');
    assert.equal(prepDomainpart('example｡com'), 'example.com', 'U+FF61 is a label separator');
  });
  it('keeps fullwidth characters in the resourcepart (OpaqueString)', () => {
    assert.deepEqual(parts('juliet@example.com/Ｆｏｏ'), ['juliet', 'example.com', 'Ｆｏｏ']);
  });
  it('rejects a localpart whose width mapping yields a §3.3.1 disallowed character', () => {
    for (const c of ['＂', '＆', '＇', '／', '：', '＜', '＞', '＠']) {
      assert.throws(() => prepLocalpart(`a${c}b`), JidError, c);
    }
  });
});

describe('length limits (RFC 7622 §3.2-§3.4: 1023 octets after preparation)', () => {
  it('localpart', () => {
    assert.equal(prepLocalpart('a'.repeat(1023)).length, 1023);
    assert.throws(() => prepLocalpart('a'.repeat(1024)), JidError);
    assert.equal(prepLocalpart(`${'é'.repeat(511)}a`), `${'é'.repeat(511)}a`, '2 * 511 + 1 octets');
    assert.throws(() => prepLocalpart('é'.repeat(512)), JidError);
    // 'e' + U+0301 is three octets before NFC and two after: counted after.
    assert.equal(prepLocalpart(`${'e\u0301'.repeat(511)}a`), `${'é'.repeat(511)}a`);
    // Fullwidth letters are three octets each before width mapping, one after.
    assert.equal(prepLocalpart('Ａ'.repeat(1023)), 'a'.repeat(1023));
  });
  it('resourcepart', () => {
    assert.equal(prepResourcepart('R'.repeat(1023)), 'R'.repeat(1023));
    assert.throws(() => prepResourcepart('R'.repeat(1024)), JidError);
    assert.equal(prepResourcepart(`${'😀'.repeat(255)}abc`).length, 513, '4 * 255 + 3 octets');
    assert.throws(() => prepResourcepart('😀'.repeat(256)), JidError);
  });
  it('domainpart', () => {
    const label = 'a'.repeat(63);
    const d1023 = `${Array(15).fill(label).join('.')}.${'b'.repeat(63)}`;
    assert.equal(d1023.length, 1023);
    assert.equal(prepDomainpart(d1023), d1023);
    assert.throws(() => prepDomainpart(`c${d1023}`), JidError);
    assert.throws(() => prepDomainpart(`${'a'.repeat(64)}.example`), JidError, 'label over 63 octets');
    assert.equal(prepDomainpart(`${'é'.repeat(57)}.example`), `${'é'.repeat(57)}.example`);
    assert.throws(() => prepDomainpart(`${'é'.repeat(58)}.example`), JidError, 'A-label over 63 octets');
  });
  it('a full JID may reach 3 * 1023 octets plus separators', () => {
    const d = `${Array(15).fill('a'.repeat(63)).join('.')}.${'b'.repeat(63)}`;
    const j = Jid.parse(`${'l'.repeat(1023)}@${d}/${'r'.repeat(1023)}`);
    assert.equal(j.toString().length, 1023 * 3 + 2);
  });
});

describe('domainpart (RFC 7622 §3.2)', () => {
  it('strips one trailing dot', () => {
    assert.equal(prepDomainpart('example.com.'), 'example.com');
    assert.deepEqual(parts('juliet@example.com./balcony'), ['juliet', 'example.com', 'balcony']);
    assert.ok(Jid.parse('example.com.').equals(Jid.parse('example.com')));
    assert.throws(() => prepDomainpart('example.com..'), JidError);
    assert.throws(() => prepDomainpart('.'), JidError);
  });
  it('accepts IPv4 addresses and simple host names', () => {
    assert.equal(prepDomainpart('127.0.0.1'), '127.0.0.1');
    assert.equal(prepDomainpart('localhost'), 'localhost');
    assert.equal(prepDomainpart('xmpp-1.example'), 'xmpp-1.example');
  });
  it('accepts bracketed IPv6 literals in canonical form', () => {
    assert.deepEqual(parts('juliet@[2001:DB8:0:0:0:0:0:1]/r'), ['juliet', '[2001:db8::1]', 'r']);
    assert.equal(prepDomainpart('[::1]'), '[::1]');
    assert.equal(prepDomainpart('[::ffff:192.0.2.1]'), '[::ffff:c000:201]');
    assert.ok(Jid.parse('[2001:db8::1]').equals(Jid.parse('[2001:0db8:0000::0001]')));
  });
  for (const bad of ['[::gg]', '::1', '[::1', '[]', '[127.0.0.1]', '[fe80::1%25eth0]', '[::1]:5222']) {
    it(`rejects the IP literal ${JSON.stringify(bad)}`, () => {
      assert.throws(() => prepDomainpart(bad), JidError);
    });
  }
  it('converts A-labels to U-labels (RFC 7622 §3.2.1)', () => {
    assert.equal(prepDomainpart('xn--bcher-kva.example'), 'bücher.example');
    assert.equal(prepDomainpart('XN--BCHER-KVA.Example'), 'bücher.example');
    assert.ok(Jid.parse('a@xn--bcher-kva.example').equals(Jid.parse('a@BÜCHER.example')));
    assert.equal(prepDomainpart('xn--fa-hia.de'), 'faß.de');
  });
  const badDomains: [string, string][] = [
    ['a..b', 'empty label'],
    ['.example', 'empty first label'],
    ['-a.example', 'leading hyphen'],
    ['a-.example', 'trailing hyphen'],
    ['ab--cd.example', '"--" in positions 3-4'],
    ['a_b.example', 'underscore is not LDH'],
    ['a b.example', 'space'],
    ['example.com:5222', 'port'],
    ['xn--zz.example', 'malformed Punycode'],
    ['xn--abc-.example', 'A-label that decodes to ASCII'],
    ['xn--.example', 'empty A-label'],
    // Found by the JID fuzz target (fuzz/targets/jid.ts): node:url decodes it to U+13EB,
    // which lowercases to U+ABBB, so the result did not parse again.
    ['xn--bce.example', 'A-label of U+ABBB CHEROKEE SMALL LETTER (RFC 5892 Unstable)'],
    ['XN--BCe.NET.', 'the same, as the fuzzer found it'],
    ['\u13eb.example', 'U+13EB lowercases to the disallowed U+ABBB'],
    ['😀.example', 'symbol'],
    ['a·b.example', 'MIDDLE DOT outside l·l (RFC 5892 A.3)'],
    ['\u0301a.example', 'leading combining mark (RFC 5891 §4.2.3.2)'],
    ['a\u200db.example', 'ZWJ without virama'],
    ['ⅳ.example', 'compatibility character'],
    ['123.אב.example', 'Bidi Rule across labels (RFC 5893 §2)'],
    ['אבa.example', 'Bidi Rule within a label'],
    ['\ud800.example', 'unpaired surrogate'],
    ['\u0378.example', 'unassigned'],
  ];
  for (const [bad, why] of badDomains) {
    it(`rejects ${JSON.stringify(bad)} — ${why}`, () => {
      assert.throws(() => prepDomainpart(bad), JidError);
    });
  }
  it('accepts contextual and RTL labels that satisfy their rules', () => {
    assert.equal(prepDomainpart('l·l.cat'), 'l·l.cat');
    assert.equal(prepDomainpart('אב.example'), 'אב.example');
    assert.equal(prepDomainpart('a123.אב.example'), 'a123.אב.example');
  });
});

describe('prep functions throw JidError', () => {
  it('wraps PRECIS failures', () => {
    assert.throws(() => prepLocalpart('♚'), JidError);
    assert.throws(() => prepResourcepart('a\u0000'), JidError);
    assert.throws(() => prepResourcepart('\u2028'), JidError);
    assert.throws(() => prepDomainpart(''), JidError);
  });
  it('returns prepared strings', () => {
    assert.equal(prepLocalpart('Juliet'), 'juliet');
    assert.equal(prepResourcepart(' Balcony\u00a0Two '), ' Balcony Two ');
    assert.equal(prepDomainpart('EXAMPLE.com'), 'example.com');
  });
});

describe('Jid', () => {
  it('constructor stores parts unchecked', () => {
    const j = new Jid('UNCHECKED', 'x', undefined);
    assert.equal(j.local, 'UNCHECKED');
    assert.equal(j.resource, '');
  });
  it('toString and bareString', () => {
    const full = Jid.parse('juliet@example.com/balcony');
    assert.equal(full.toString(), 'juliet@example.com/balcony');
    assert.equal(full.bareString(), 'juliet@example.com');
    assert.equal(`${full}`, 'juliet@example.com/balcony');
    assert.equal(JSON.stringify({ to: full }), '{"to":"juliet@example.com/balcony"}');
    assert.equal(Jid.parse('example.com/r').toString(), 'example.com/r');
    assert.equal(Jid.parse('example.com').bareString(), 'example.com');
  });
  it('bare is cached and a bare JID is its own bare', () => {
    const full = Jid.parse('juliet@example.com/balcony');
    const bare = full.bare;
    assert.equal(full.bare, bare);
    assert.ok(bare.isBare());
    assert.ok(!full.isBare());
    assert.equal(bare.toString(), 'juliet@example.com');
    assert.equal(bare.bare, bare);
    assert.ok(bare.equals(Jid.parse('juliet@example.com')));
  });
  it('equals compares all three parts', () => {
    const a = Jid.parse('a@example.com/r');
    assert.ok(a.equals(a));
    assert.ok(a.equals(new Jid('a', 'example.com', 'r')));
    assert.ok(!a.equals(new Jid('a', 'example.com')));
    assert.ok(!a.equals(new Jid('b', 'example.com', 'r')));
    assert.ok(!a.equals(new Jid('a', 'example.org', 'r')));
    assert.ok(!Jid.parse('example.com').equals(Jid.parse('a@example.com')));
  });
  it('parse(toString()) round-trips', () => {
    for (const s of ['ÉLODIE@Bücher.example/Ｒés', 'a@[::1]/x/y', 'fußball@example.com', 'example.com']) {
      const j = Jid.parse(s);
      assert.ok(Jid.parse(j.toString()).equals(j), s);
      assert.equal(Jid.parse(j.toString()).toString(), j.toString());
    }
  });
  it('tryParseJid returns a Jid or undefined', () => {
    assert.equal(tryParseJid('juliet@example.com')?.toString(), 'juliet@example.com');
    assert.equal(tryParseJid('juliet@'), undefined);
  });
});

describe('ASCII fast paths agree with the general code path', () => {
  // A leading "é" sends the part through PRECIS / IDNA processing instead.
  const attempt = (f: (s: string) => string, s: string): string | undefined => {
    try {
      return f(s);
    } catch (e) {
      assert.ok(e instanceof JidError);
      return undefined;
    }
  };
  for (const [name, f, suffix] of [
    ['prepLocalpart', prepLocalpart, 'a'],
    ['prepResourcepart', prepResourcepart, 'a'],
    ['prepDomainpart', prepDomainpart, 'a.example'],
  ] as const) {
    it(name, () => {
      for (let c = 0; c < 128; c++) {
        const ch = String.fromCharCode(c);
        const fast = attempt(f, `a${ch}${suffix}`);
        const slow = attempt(f, `é${ch}${suffix}`);
        assert.equal(slow === undefined, fast === undefined, `U+${c.toString(16)}`);
        if (fast !== undefined) assert.equal(slow!.slice(1), fast.slice(1), `U+${c.toString(16)}`);
      }
    });
  }
});
