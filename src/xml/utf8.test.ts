import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Utf8Stream } from './utf8.js';

/** Feeds `bytes` cut at every position in `cuts`, returning the text or null at the first refusal. */
function run(bytes: Buffer, cuts: number[]): string | null {
  const d = new Utf8Stream();
  let out = '';
  let at = 0;
  for (const c of [...cuts, bytes.length]) {
    const t = d.decode(bytes.subarray(at, c));
    if (t === null) return null;
    out += t;
    at = c;
  }
  return out;
}

test('valid text split at every byte gives the same text as a fatal TextDecoder', () => {
  const text = "<message>é € 𝄞 ﻿ a</message>";
  const bytes = Buffer.from(text, 'utf8');
  for (let i = 0; i <= bytes.length; i++) {
    for (let j = i; j <= bytes.length; j++) assert.equal(run(bytes, [i, j]), text, `cut at ${i}, ${j}`);
  }
});

test('a leading byte order mark is dropped, once, as TextDecoder does', () => {
  const bytes = Buffer.from('\ufeff<a/>\ufeff', 'utf8');
  assert.equal(run(bytes, [1, 2]), new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  assert.equal(run(bytes, []), '<a/>\ufeff');
});

test('invalid input is refused whatever the cuts, as soon as it cannot be completed', () => {
  const bad = [
    [0xff],
    [0xc0, 0x80], // overlong
    [0xe0, 0x80, 0x80], // overlong
    [0xed, 0xa0, 0x80], // a surrogate
    [0xf4, 0x90, 0x80, 0x80], // past U+10FFFF
    [0x80],
    [0xc3, 0x41],
  ];
  for (const b of bad) {
    const bytes = Buffer.from([0x41, ...b, 0x42]);
    for (let i = 0; i <= bytes.length; i++) assert.equal(run(bytes, [i]), null, `${Buffer.from(b).toString('hex')} cut at ${i}`);
    // Refused in the chunk where a TextDecoder refuses it, not one later.
    const d = new Utf8Stream();
    const td = new TextDecoder('utf-8', { fatal: true });
    for (let i = 1; i <= bytes.length; i++) {
      const piece = bytes.subarray(i - 1, i);
      let tdFailed = false;
      try {
        td.decode(piece, { stream: true });
      } catch {
        tdFailed = true;
      }
      assert.equal(d.decode(piece) === null, tdFailed, `${Buffer.from(b).toString('hex')} byte ${i}`);
      if (tdFailed) break;
    }
  }
});

test('a cut sequence waits for the next chunk', () => {
  const d = new Utf8Stream();
  assert.equal(d.decode(Buffer.from([0x61, 0xe2, 0x82])), 'a');
  assert.equal(d.decode(Buffer.from([0xac])), '€');
});
