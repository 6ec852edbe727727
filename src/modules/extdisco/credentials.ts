// Time-limited TURN credentials as coturn's `use-auth-secret` (the "TURN REST API"
// draft, draft-uberti-behave-turn-rest-00 §2.2) checks them: the username is the
// expiry time (Unix seconds) and the user's name joined by ':', the password the
// base64 HMAC-SHA1 of that username under the secret shared with the TURN server.
import { createHmac } from 'node:crypto';

export interface TurnCredentials {
  username: string;
  password: string;
  /** When they stop working. */
  expires: Date;
}

export function turnCredentials(secret: string, user: string, ttlSeconds: number, now = Date.now()): TurnCredentials {
  const expiry = Math.floor(now / 1000) + Math.floor(ttlSeconds);
  const username = `${expiry}:${user}`;
  const password = createHmac('sha1', secret).update(username).digest('base64');
  return { username, password, expires: new Date(expiry * 1000) };
}
