// Strict, incremental UTF-8 decoding of a byte stream (RFC 6120 §11.6: UTF-8 only),
// without a TextDecoder: a fatal streaming TextDecoder holds an ICU converter of about
// 1.2 KiB of native memory for as long as its stream lives (bench/memory), and a
// server keeps one per connection. Complete input is checked with buffer.isUtf8; only
// a sequence cut at the end of a chunk (at most 3 bytes) is carried to the next one.
import { isUtf8 } from 'node:buffer';

/**
 * How many bytes at the end of `buf` are the start of a multi-byte sequence that the
 * next chunk may complete (0 when the chunk ends on a boundary, or when its end could
 * never be completed: that is left to isUtf8 to refuse). RFC 3629 §4: the second byte's
 * range depends on the lead byte (no overlong forms, no surrogates, nothing past U+10FFFF).
 */
function incompleteTail(buf: Buffer): number {
  const end = buf.length;
  let lead = end - 1;
  while (lead >= 0 && end - lead <= 3 && (buf[lead]! & 0xc0) === 0x80) lead--;
  if (lead < 0 || end - lead > 3) return 0;
  const b = buf[lead]!;
  const need = b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
  const have = end - lead;
  if (need <= have) return 0;
  if (have >= 2) {
    const c = buf[lead + 1]!;
    if (b === 0xe0 && c < 0xa0) return 0;
    if (b === 0xed && c > 0x9f) return 0;
    if (b === 0xf0 && c < 0x90) return 0;
    if (b === 0xf4 && c > 0x8f) return 0;
  }
  return have;
}

export class Utf8Stream {
  /** The start of a sequence cut by the end of the last chunk. */
  private carry: Buffer | undefined;
  private started = false;

  /** The text of the next chunk, or null when the input is not UTF-8. */
  decode(data: Buffer): string | null {
    const buf = this.carry === undefined ? data : Buffer.concat([this.carry, data]);
    const end = buf.length - incompleteTail(buf);
    const whole = end === buf.length ? buf : buf.subarray(0, end);
    if (!isUtf8(whole)) return null;
    this.carry = end === buf.length ? undefined : Buffer.from(buf.subarray(end));
    let text = whole.toString('utf8');
    if (!this.started && text !== '') {
      this.started = true;
      // As a TextDecoder does: a byte order mark at the very start is not part of the text.
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    return text;
  }
}
