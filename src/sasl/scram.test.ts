import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AccountStore, ScramHash } from '../storage/types.js';
import type { ChannelBindingType, SaslContext, SaslStep } from '../core/sasl.js';
import {
  deriveScramCredentials,
  digest,
  hmac,
  saltedPassword,
  xor,
} from './credentials.js';
import { decodeSaslname, encodeSaslname, scramMechanism } from './scram.js';
import { ScramClient } from './scram-client.js';
import { HOST, MemoryAccounts, assertFailure, withUser } from './testing.js';

const EXPORTER = Buffer.from('0123456789abcdef0123456789abcdef', 'hex');
const END_POINT = Buffer.from('fedcba9876543210fedcba9876543210', 'hex');

interface CtxOptions {
  secure?: boolean;
  cbTypes?: ChannelBindingType[];
  plusAdvertised?: boolean;
  accounts?: AccountStore;
}

function makeCtx(opts: CtxOptions = {}): SaslContext {
  const cbTypes = opts.cbTypes ?? [];
  return {
    host: HOST,
    secure: opts.secure ?? cbTypes.length > 0,
    channelBindingTypes: cbTypes,
    channelBinding: (type) =>
      cbTypes.includes(type) ? (type === 'tls-exporter' ? EXPORTER : END_POINT) : undefined,
    plusAdvertised: opts.plusAdvertised ?? cbTypes.length > 0,
    accounts: opts.accounts ?? new MemoryAccounts(),
  };
}

function text(step: SaslStep): string {
  assert.notEqual(step.kind, 'failure', step.kind === 'failure' ? `${step.condition}: ${step.text}` : '');
  if (step.kind === 'challenge') return step.data.toString('utf8');
  if (step.kind === 'success') return step.additionalData?.toString('utf8') ?? '';
  return '';
}

/** Runs a whole exchange with `client`; returns the last step and the server-first-message. */
async function runClient(
  hash: ScramHash,
  plus: boolean,
  ctx: SaslContext,
  client: ScramClient,
): Promise<{ last: SaslStep; serverFirst?: string }> {
  const exchange = scramMechanism(hash, plus).start(ctx);
  const first = await exchange.step(Buffer.from(client.first()));
  if (first.kind !== 'challenge') return { last: first };
  const serverFirst = first.data.toString('utf8');
  const last = await exchange.step(Buffer.from(client.final(serverFirst)));
  return { last, serverFirst };
}

const SERVER_FIRST_SHAPE = /^r=([\x21-\x2b\x2d-\x7e]+),s=([A-Za-z0-9+/]+=*),i=(\d+)$/;

describe('RFC test vectors', () => {
  test('RFC 5802 §5 SCRAM-SHA-1 exchange, byte for byte', async () => {
    const accounts = new MemoryAccounts();
    const salt = Buffer.from('QSXCR+Q6sek8bf92', 'base64');
    await accounts.create(HOST, 'user', [deriveScramCredentials('pencil', 'SHA-1', { salt, iterations: 4096 })]);
    const mech = scramMechanism('SHA-1', false, { serverNonce: () => '3rfcNHYJY1ZVvWVs7j' });
    assert.equal(mech.name, 'SCRAM-SHA-1');
    const exchange = mech.start(makeCtx({ accounts }));

    const s1 = await exchange.step(Buffer.from('n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL'));
    assert.equal(text(s1), 'r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096');
    const s2 = await exchange.step(
      Buffer.from('c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts='),
    );
    assert.equal(s2.kind, 'success');
    assert.equal(text(s2), 'v=rmF9pqV8S7suAoZWja4dJRkFsKQ=');
    if (s2.kind === 'success') assert.equal(s2.username, 'user');
  });

  test('RFC 7677 §3 SCRAM-SHA-256 exchange, byte for byte', async () => {
    const accounts = new MemoryAccounts();
    const salt = Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64');
    await accounts.create(HOST, 'user', [deriveScramCredentials('pencil', 'SHA-256', { salt, iterations: 4096 })]);
    const mech = scramMechanism('SHA-256', false, { serverNonce: () => '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0' });
    const exchange = mech.start(makeCtx({ accounts }));

    const s1 = await exchange.step(Buffer.from('n,,n=user,r=rOprNGfwEbeRWgbNEkqO'));
    assert.equal(
      text(s1),
      'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
    );
    const s2 = await exchange.step(
      Buffer.from(
        'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
      ),
    );
    assert.equal(s2.kind, 'success');
    assert.equal(text(s2), 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=');
  });

  test('the RFC 5802 proof is refused when one byte changes', async () => {
    const accounts = new MemoryAccounts();
    const salt = Buffer.from('QSXCR+Q6sek8bf92', 'base64');
    await accounts.create(HOST, 'user', [deriveScramCredentials('pencil', 'SHA-1', { salt, iterations: 4096 })]);
    const exchange = scramMechanism('SHA-1', false, { serverNonce: () => '3rfcNHYJY1ZVvWVs7j' }).start(
      makeCtx({ accounts }),
    );
    await exchange.step(Buffer.from('n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL'));
    const s2 = await exchange.step(
      Buffer.from('c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v1X8v3Bz2T0CJGbJQyF0X+HI4Ts='),
    );
    assertFailure(s2, 'not-authorized');
  });
});

describe('SCRAM server', () => {
  for (const hash of ['SHA-1', 'SHA-256', 'SHA-512'] as const) {
    test(`SCRAM-${hash} round trip with the client, server signature verified`, async () => {
      const accounts = await withUser('juliet', 'r0m30 & more');
      const client = new ScramClient(hash, 'juliet', 'r0m30 & more');
      const { last, serverFirst } = await runClient(hash, false, makeCtx({ accounts }), client);
      assert.equal(last.kind, 'success');
      if (last.kind !== 'success') return;
      assert.equal(last.username, 'juliet');
      assert.ok(client.verify(last.additionalData?.toString('utf8') ?? ''));
      // RFC 5802 §5.1: the server appends its own nonce (24 random bytes in base64).
      const nonce = SERVER_FIRST_SHAPE.exec(serverFirst ?? '')?.[1] ?? '';
      const clientNonce = client.first().split(',r=')[1] ?? '';
      assert.ok(clientNonce.length > 0 && nonce.startsWith(clientNonce));
      assert.match(nonce.slice(clientNonce.length), /^[A-Za-z0-9+/]{32}$/);
    });
  }

  test('without an initial response the server sends an empty challenge first', async () => {
    const accounts = await withUser('juliet', 'pencil');
    const client = new ScramClient('SHA-256', 'juliet', 'pencil');
    const exchange = scramMechanism('SHA-256', false).start(makeCtx({ accounts }));
    const s0 = await exchange.step(undefined);
    assert.equal(s0.kind, 'challenge');
    if (s0.kind === 'challenge') assert.equal(s0.data.length, 0);
    const s1 = await exchange.step(Buffer.from(client.first()));
    const s2 = await exchange.step(Buffer.from(client.final(text(s1))));
    assert.equal(s2.kind, 'success');
  });

  test('wrong password fails with not-authorized', async () => {
    const accounts = await withUser('juliet', 'pencil');
    const client = new ScramClient('SHA-256', 'juliet', 'pen');
    const { last } = await runClient('SHA-256', false, makeCtx({ accounts }), client);
    assertFailure(last, 'not-authorized');
  });

  test('an unknown user gets a server-first of the same shape and fails only at the proof', async () => {
    const accounts = await withUser('juliet', 'pencil');
    const ctx = makeCtx({ accounts });
    const known = await runClient('SHA-256', false, ctx, new ScramClient('SHA-256', 'juliet', 'x'));
    const unknownA = await runClient('SHA-256', false, ctx, new ScramClient('SHA-256', 'romeo', 'x'));
    const unknownB = await runClient('SHA-256', false, ctx, new ScramClient('SHA-256', 'romeo', 'y'));
    const other = await runClient('SHA-256', false, ctx, new ScramClient('SHA-256', 'benvolio', 'x'));

    const parse = (m: string | undefined) => {
      const match = SERVER_FIRST_SHAPE.exec(m ?? '');
      assert.ok(match, `server-first has the RFC 5802 shape: ${m}`);
      return { nonceLength: match[1]?.length, salt: match[2] ?? '', iterations: match[3] };
    };
    const k = parse(known.serverFirst);
    const a = parse(unknownA.serverFirst);
    const b = parse(unknownB.serverFirst);
    const o = parse(other.serverFirst);
    assert.equal(a.nonceLength, k.nonceLength);
    assert.equal(Buffer.from(a.salt, 'base64').length, Buffer.from(k.salt, 'base64').length);
    assert.equal(a.iterations, k.iterations);
    // Deterministic per user, so retrying does not reveal a fake salt.
    assert.equal(a.salt, b.salt);
    assert.notEqual(a.salt, o.salt);
    for (const r of [known, unknownA, unknownB, other]) assertFailure(r.last, 'not-authorized');
  });

  test('an unknown user fails even with a proof computed from the fake salt', async () => {
    // The client derives keys from whatever salt it is given; that must not open anything.
    const { last } = await runClient('SHA-1', false, makeCtx(), new ScramClient('SHA-1', 'nobody', 'pencil'));
    assertFailure(last, 'not-authorized');
  });

  test('a user without credentials for this hash is treated like an unknown user', async () => {
    const accounts = new MemoryAccounts();
    await accounts.create(HOST, 'juliet', [deriveScramCredentials('pencil', 'SHA-1')]);
    const ctx = makeCtx({ accounts });
    const ok = await runClient('SHA-1', false, ctx, new ScramClient('SHA-1', 'juliet', 'pencil'));
    assert.equal(ok.last.kind, 'success');
    const other = await runClient('SHA-256', false, ctx, new ScramClient('SHA-256', 'juliet', 'pencil'));
    assert.match(other.serverFirst ?? '', SERVER_FIRST_SHAPE);
    assertFailure(other.last, 'not-authorized');
  });

  test('the username is prepared (SASLprep + lowercase) before lookup', async () => {
    const accounts = await withUser('juliet', 'pencil');
    const client = new ScramClient('SHA-256', 'JuLiEt', 'pencil');
    const { last } = await runClient('SHA-256', false, makeCtx({ accounts }), client);
    assert.equal(last.kind, 'success');
    if (last.kind === 'success') assert.equal(last.username, 'juliet');
  });

  test('saslname =2C and =3D are decoded', async () => {
    assert.equal(decodeSaslname('a=2Cb=3Dc'), 'a,b=c');
    assert.equal(encodeSaslname('a,b=c'), 'a=2Cb=3Dc');
    assert.equal(decodeSaslname('a=2cb'), undefined);
    assert.equal(decodeSaslname('a=b'), undefined);
    assert.equal(decodeSaslname('a='), undefined);
    assert.equal(decodeSaslname(''), undefined);
    const accounts = await withUser('a,b=c', 'pencil');
    const client = new ScramClient('SHA-1', 'a,b=c', 'pencil');
    assert.match(client.first(), /^n,,n=a=2Cb=3Dc,r=/);
    const { last } = await runClient('SHA-1', false, makeCtx({ accounts }), client);
    assert.equal(last.kind, 'success');
    if (last.kind === 'success') assert.equal(last.username, 'a,b=c');
  });

  test('authzid must name the authenticating account', async () => {
    const accounts = await withUser('juliet', 'pencil');
    const ctx = makeCtx({ accounts });
    for (const authzid of ['juliet@example.com', 'juliet', 'Juliet@Example.COM']) {
      const client = new ScramClient('SHA-256', 'juliet', 'pencil', { authzid });
      const { last } = await runClient('SHA-256', false, ctx, client);
      assert.equal(last.kind, 'success', authzid);
    }
    for (const authzid of ['romeo@example.com', 'romeo', 'juliet@example.net', 'juliet@example.com/balcony']) {
      const client = new ScramClient('SHA-256', 'juliet', 'pencil', { authzid });
      const { last } = await runClient('SHA-256', false, ctx, client);
      assertFailure(last, 'invalid-authzid');
    }
  });

  test('malformed client-first messages', async () => {
    const accounts = await withUser('user', 'pencil');
    const bad = [
      'x,,n=user,r=abc', // unknown gs2-cbind-flag
      'n,b=user,n=user,r=abc', // authzid without a=
      'n,,m=ext,n=user,r=abc', // RFC 5802 §5.1: m= MUST fail
      'n,,n=user,r=abc,m=ext',
      'n,,n=us=er,r=abc', // bad saslname escape
      'n,,n=,r=abc', // empty username
      'n,,r=abc,n=user', // wrong order
      'n,,n=user', // no nonce
      'n,,n=user,r=', // empty nonce
      'n,,n=user,r=a\u00e9', // non-printable nonce
      'n,,n=user,r=abc,1=x', // bad extension
      'n,n=user,r=abc', // gs2 header missing a comma
      '',
    ];
    for (const message of bad) {
      const exchange = scramMechanism('SHA-1', false).start(makeCtx({ accounts }));
      assertFailure(await exchange.step(Buffer.from(message)), 'malformed-request');
    }
    const exchange = scramMechanism('SHA-1', false).start(makeCtx({ accounts }));
    const notUtf8 = Buffer.concat([Buffer.from('n,,n='), Buffer.from([0xff]), Buffer.from(',r=abc')]);
    assertFailure(await exchange.step(notUtf8), 'malformed-request');
  });

  test('unknown extensions in client-first are ignored', async () => {
    const accounts = await withUser('user', 'pencil');
    const exchange = scramMechanism('SHA-1', false).start(makeCtx({ accounts }));
    const step = await exchange.step(Buffer.from('n,,n=user,r=abc,x=whatever'));
    assert.equal(step.kind, 'challenge');
  });

  test('malformed or mismatching client-final messages', async () => {
    const accounts = await withUser('user', 'pencil');
    const ctx = makeCtx({ accounts });
    const cases: { mutate: (final: string) => string; condition: string }[] = [
      { mutate: (f) => f.replace(/,p=.*$/, ''), condition: 'malformed-request' }, // no proof
      { mutate: (f) => f.replace('c=biws', 'c=bi!s'), condition: 'malformed-request' }, // bad base64
      { mutate: (f) => f.replace(/,p=/, ',m=x,p='), condition: 'malformed-request' },
      { mutate: (f) => f.replace(/p=(.*)$/, 'p=$1$1'), condition: 'malformed-request' }, // padding in the middle
      { mutate: (f) => f.replace(/,r=[^,]+/, ',r=other'), condition: 'not-authorized' }, // nonce mismatch
      { mutate: (f) => f.replace(/p=.*$/, 'p=AAAA'), condition: 'not-authorized' }, // short proof
      { mutate: (f) => f.replace('c=biws', 'c=eSws'), condition: 'not-authorized' }, // "y,," instead of "n,,"
    ];
    for (const { mutate, condition } of cases) {
      const client = new ScramClient('SHA-1', 'user', 'pencil');
      const exchange = scramMechanism('SHA-1', false).start(ctx);
      const s1 = await exchange.step(Buffer.from(client.first()));
      const s2 = await exchange.step(Buffer.from(mutate(client.final(text(s1)))));
      assertFailure(s2, condition);
    }
  });

  test('a proof that is valid for another nonce is refused', async () => {
    // The client signs an AuthMessage whose client-final carries a nonce other than
    // the server's; the proof is right for that message, the nonce check must catch it.
    const accounts = await withUser('user', 'pencil');
    const exchange = scramMechanism('SHA-1', false).start(makeCtx({ accounts }));
    const bare = 'n=user,r=abc';
    const serverFirst = text(await exchange.step(Buffer.from(`n,,${bare}`)));
    const match = SERVER_FIRST_SHAPE.exec(serverFirst);
    assert.ok(match);
    const salted = saltedPassword('SHA-1', 'pencil', Buffer.from(match[2] ?? '', 'base64'), Number(match[3]));
    const clientKey = hmac('SHA-1', salted, 'Client Key');
    const withoutProof = `c=biws,r=${match[1]}x`;
    const authMessage = `${bare},${serverFirst},${withoutProof}`;
    const proof = xor(clientKey, hmac('SHA-1', digest('SHA-1', clientKey), authMessage));
    const step = await exchange.step(Buffer.from(`${withoutProof},p=${proof.toString('base64')}`));
    assertFailure(step, 'not-authorized');
  });

  test('no further steps after the exchange ended', async () => {
    const accounts = await withUser('user', 'pencil');
    const client = new ScramClient('SHA-1', 'user', 'pencil');
    const exchange = scramMechanism('SHA-1', false).start(makeCtx({ accounts }));
    const s1 = await exchange.step(Buffer.from(client.first()));
    assert.equal((await exchange.step(Buffer.from(client.final(text(s1))))).kind, 'success');
    assertFailure(await exchange.step(Buffer.from('')), 'malformed-request');
    assertFailure(await exchange.step(undefined), 'malformed-request');
  });

  test('a storage error becomes temporary-auth-failure', async () => {
    const accounts = await withUser('user', 'pencil');
    accounts.getScramCredentials = () => Promise.reject(new Error('database is down'));
    const exchange = scramMechanism('SHA-1', false).start(makeCtx({ accounts }));
    assertFailure(await exchange.step(Buffer.from('n,,n=user,r=abc')), 'temporary-auth-failure');
  });

  test('username preparation failures are rejected before any lookup', async () => {
    const accounts = await withUser('user', 'pencil');
    const exchange = scramMechanism('SHA-1', false).start(makeCtx({ accounts }));
    assertFailure(await exchange.step(Buffer.from('n,,n=us\u0007er,r=abc')), 'not-authorized');
    assert.equal(accounts.lookups, 0);
  });
});

describe('channel binding', () => {
  test('-PLUS is available only with channel binding types', () => {
    const plus = scramMechanism('SHA-256', true);
    assert.equal(plus.name, 'SCRAM-SHA-256-PLUS');
    assert.equal(plus.requiresTls, true);
    assert.equal(plus.available(makeCtx()), false);
    assert.equal(plus.available(makeCtx({ cbTypes: ['tls-exporter'] })), true);
    assert.equal(scramMechanism('SHA-256', false).available(makeCtx()), true);
    assert.equal(scramMechanism('SHA-256', false).requiresTls, false);
  });

  for (const cbType of ['tls-exporter', 'tls-server-end-point'] as const) {
    test(`SCRAM-SHA-256-PLUS with ${cbType} succeeds with the right data`, async () => {
      const accounts = await withUser('user', 'pencil');
      const ctx = makeCtx({ accounts, cbTypes: ['tls-exporter', 'tls-server-end-point'] });
      const cbData = cbType === 'tls-exporter' ? EXPORTER : END_POINT;
      const client = new ScramClient('SHA-256', 'user', 'pencil', { cbType, cbData });
      assert.ok(client.first().startsWith(`p=${cbType},,n=user,`));
      const { last } = await runClient('SHA-256', true, ctx, client);
      assert.equal(last.kind, 'success');
      if (last.kind === 'success') assert.ok(client.verify(last.additionalData?.toString() ?? ''));
    });
  }

  test('tampered channel binding data fails', async () => {
    const accounts = await withUser('user', 'pencil');
    const ctx = makeCtx({ accounts, cbTypes: ['tls-exporter'] });
    const tampered = Buffer.from(EXPORTER);
    tampered[0] = (tampered[0] ?? 0) ^ 1;
    for (const cbData of [tampered, Buffer.alloc(0), END_POINT]) {
      const client = new ScramClient('SHA-512', 'user', 'pencil', { cbType: 'tls-exporter', cbData });
      const { last } = await runClient('SHA-512', true, ctx, client);
      assertFailure(last, 'not-authorized');
    }
  });

  test('a channel binding type the connection does not offer fails', async () => {
    const accounts = await withUser('user', 'pencil');
    const ctx = makeCtx({ accounts, cbTypes: ['tls-exporter'] });
    for (const cbType of ['tls-server-end-point', 'tls-unique']) {
      const client = new ScramClient('SHA-256', 'user', 'pencil', { cbType, cbData: END_POINT });
      const { last } = await runClient('SHA-256', true, ctx, client);
      assertFailure(last, 'not-authorized');
    }
  });

  test('the cb-name must be one the connection lists, even if data could be produced', async () => {
    const accounts = await withUser('user', 'pencil');
    const ctx: SaslContext = {
      ...makeCtx({ accounts, cbTypes: ['tls-exporter'] }),
      channelBinding: () => EXPORTER,
    };
    const client = new ScramClient('SHA-256', 'user', 'pencil', { cbType: 'tls-server-end-point', cbData: EXPORTER });
    const { last } = await runClient('SHA-256', true, ctx, client);
    assertFailure(last, 'not-authorized');
  });

  test('-PLUS without a "p" flag is malformed', async () => {
    const accounts = await withUser('user', 'pencil');
    const ctx = makeCtx({ accounts, cbTypes: ['tls-exporter'] });
    for (const gs2 of ['n', 'y'] as const) {
      const { last } = await runClient('SHA-256', true, ctx, new ScramClient('SHA-256', 'user', 'pencil', { gs2 }));
      assertFailure(last, 'malformed-request');
    }
  });

  test('"p" with a mechanism without -PLUS is malformed', async () => {
    const accounts = await withUser('user', 'pencil');
    const ctx = makeCtx({ accounts, cbTypes: ['tls-exporter'] });
    const client = new ScramClient('SHA-256', 'user', 'pencil', { cbType: 'tls-exporter', cbData: EXPORTER });
    const { last } = await runClient('SHA-256', false, ctx, client);
    assertFailure(last, 'malformed-request');
  });

  test('"y" fails when -PLUS was advertised (RFC 5802 §6 downgrade) and passes otherwise', async () => {
    const accounts = await withUser('user', 'pencil');
    const advertised = makeCtx({ accounts, cbTypes: ['tls-exporter'], plusAdvertised: true });
    const yClient = () => new ScramClient('SHA-256', 'user', 'pencil', { gs2: 'y' });
    const down = await runClient('SHA-256', false, advertised, yClient());
    assertFailure(down.last, 'not-authorized');

    const notAdvertised = makeCtx({ accounts, cbTypes: ['tls-exporter'], plusAdvertised: false });
    const ok = await runClient('SHA-256', false, notAdvertised, yClient());
    assert.equal(ok.last.kind, 'success');

    // The "n" flag is never a downgrade: the client does not support channel binding.
    const plain = await runClient('SHA-256', false, advertised, new ScramClient('SHA-256', 'user', 'pencil'));
    assert.equal(plain.last.kind, 'success');
  });

  test('the c= attribute must carry the gs2 header exactly', async () => {
    const accounts = await withUser('user', 'pencil');
    const ctx = makeCtx({ accounts, cbTypes: ['tls-exporter'] });
    const client = new ScramClient('SHA-256', 'user', 'pencil', { cbType: 'tls-exporter', cbData: EXPORTER });
    const exchange = scramMechanism('SHA-256', true).start(ctx);
    const s1 = await exchange.step(Buffer.from(client.first()));
    const final = client.final(text(s1));
    // Channel binding data alone, without the gs2 header in front of it.
    const withoutHeader = final.replace(/^c=[^,]+/, `c=${EXPORTER.toString('base64')}`);
    assertFailure(await exchange.step(Buffer.from(withoutHeader)), 'not-authorized');
  });
});
