// Random identifiers that live as long as a session.
import { randomUUID } from 'node:crypto';

/**
 * randomUUID() as one flat string. Node assembles a UUID from 36 one-character pieces,
 * which V8 keeps as a tree of about 20 cons strings (some 700 bytes of heap) until
 * something flattens it; a session keeps two (its id and a server-chosen resource) for as
 * long as it lives (bench/memory). Copied through latin1 (a UUID is ASCII), it is 56 bytes.
 */
export function sessionUuid(): string {
  return Buffer.from(randomUUID(), 'latin1').toString('latin1');
}
