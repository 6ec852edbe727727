// The message order of the mechanisms that check one client response and are then
// done: PLAIN and X-OAUTH2 (the client speaks first) and CRAM-MD5 and DIGEST-MD5
// (the server speaks first). It lives here once; each mechanism supplies its check.
import type { SaslContext, SaslExchange, SaslStep } from '../core/sasl.js';
import { emptyChallenge, failure } from './common.js';

export interface SingleResponseOptions {
  /**
   * For a server-first mechanism, the challenge that opens the exchange; the client
   * then has nothing to send first. Absent for a client-first mechanism.
   */
  serverChallenge?: Buffer;
}

export abstract class SingleResponseExchange implements SaslExchange {
  private state: 'initial' | 'awaiting-response' | 'done' = 'initial';
  authcid: string | undefined;

  constructor(
    protected readonly ctx: SaslContext,
    private readonly mechanism: string,
    private readonly options: SingleResponseOptions = {},
  ) {}

  /** Checks the client's one response; called at most once per exchange. */
  protected abstract check(response: Buffer): Promise<SaslStep>;

  async step(response: Buffer | undefined): Promise<SaslStep> {
    const state = this.state;
    const { serverChallenge } = this.options;
    if (state === 'initial' && serverChallenge !== undefined) {
      // An empty initial response is the same as none (RFC 6120 §6.4.2 sends it as "=").
      if (response !== undefined && response.length > 0) {
        this.state = 'done';
        return failure('malformed-request', `${this.mechanism} has no initial response`);
      }
      this.state = 'awaiting-response';
      return { kind: 'challenge', data: serverChallenge };
    }
    if (state === 'initial' && response === undefined) {
      // RFC 6120 §6.4.2: without an initial response the server asks with an empty challenge.
      this.state = 'awaiting-response';
      return emptyChallenge();
    }
    this.state = 'done';
    if (state === 'done' || response === undefined) return failure('malformed-request', `Unexpected ${this.mechanism} message`);
    // A check that throws (the store or a verifier failed) ends in temporary-auth-failure
    // (RFC 6120 §6.5.11) rather than an error the stream has to handle.
    try {
      return await this.check(response);
    } catch {
      return failure('temporary-auth-failure');
    }
  }
}
