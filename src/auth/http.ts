// `auth.backend: http`: accounts live in another service, which an HTTP endpoint
// answers for (the plug-in point the seed's Ocean had for its authentication
// handler). The server POSTs one JSON object per check and reads the verdict:
//
//   {"type":"password","host":"example.org","username":"alice","password":"..."}
//   {"type":"token","host":"example.org","username":"alice"|null,"token":"..."}
//
//   200 {"ok":true[,"username":"alice"][,"scope":"a b"]}  -> accepted
//   200 {"ok":false}, 401, 403, 404                         -> refused
//   anything else, a timeout, a network error               -> temporary-auth-failure
//
// Passwords and tokens go only into the request body; nothing here logs them.
import type { Logger } from '../log/logger.js';
import type { AccountRecorder } from '../core/credentials.js';
import { prepareUsername } from '../core/identity.js';
import type { PasswordVerdict, PasswordVerifier, TokenVerdict, TokenVerifier } from '../core/credentials.js';

export interface HttpBackendSettings {
  url: string;
  /** Seconds. */
  timeout: number;
  secret?: string;
}

type Answer = { kind: 'accepted'; username?: string; scope: string[] } | { kind: 'refused' } | { kind: 'unavailable' };

export class HttpAuthBackend {
  constructor(
    private readonly settings: HttpBackendSettings,
    private readonly log: Logger,
    /** Local account rows (rosters, offline messages... belong to one) are created on first login. */
    private readonly accounts?: AccountRecorder,
  ) {}

  passwordVerifier(): PasswordVerifier {
    return { verify: (host, username, password) => this.checkPassword(host, username, password) };
  }

  tokenVerifier(): TokenVerifier {
    return { verify: (token, host, claimed) => this.checkToken(token, host, claimed) };
  }

  async checkPassword(host: string, username: string, password: string): Promise<PasswordVerdict> {
    const answer = await this.ask({ type: 'password', host, username, password }, host, username);
    if (answer.kind === 'unavailable') return 'unavailable';
    // The endpoint may not rename the account a password was checked for.
    if (answer.kind === 'refused' || (answer.username !== undefined && answer.username !== username)) return 'wrong';
    return (await this.provision(host, username)) ? 'ok' : 'unavailable';
  }

  async checkToken(token: string, host: string, claimed?: string): Promise<TokenVerdict> {
    const answer = await this.ask({ type: 'token', host, username: claimed ?? null, token }, host, claimed);
    if (answer.kind === 'unavailable') return { ok: false, reason: 'unavailable' };
    if (answer.kind === 'refused') return { ok: false, reason: 'unknown' };
    const username = answer.username ?? claimed;
    if (username === undefined) return { ok: false, reason: 'malformed' };
    if (!(await this.provision(host, username))) return { ok: false, reason: 'unavailable' };
    return { ok: true, username, scope: answer.scope };
  }

  /** Creates the local account row (no credentials) if this is the account's first login. */
  private async provision(host: string, username: string): Promise<boolean> {
    if (this.accounts === undefined) return true;
    try {
      if (!(await this.accounts.exists(host, username))) await this.accounts.create(host, username, []);
      return true;
    } catch (err) {
      this.log.error({ event: 'auth-backend-provision-failed', user: `${username}@${host}`, err: (err as Error).message }, 'could not create the local account');
      return false;
    }
  }

  private async ask(body: Record<string, unknown>, host: string, username: string | undefined): Promise<Answer> {
    const user = username === undefined ? undefined : `${username}@${host}`;
    const started = Date.now();
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
    if (this.settings.secret !== undefined) headers.authorization = `Bearer ${this.settings.secret}`;
    let response: Response;
    let text: string;
    try {
      response = await fetch(this.settings.url, {
        method: 'POST',
        headers,
        body: JSON.stringify(body),
        redirect: 'error',
        signal: AbortSignal.timeout(this.settings.timeout * 1000),
      });
      text = await response.text();
    } catch (err) {
      const timedOut = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
      // Only the kind of failure: the request body holds the secret.
      this.log.warn({ event: 'auth-backend-error', type: body.type, user, timeout: timedOut, ms: Date.now() - started }, timedOut ? 'auth backend timed out' : 'auth backend unreachable');
      return { kind: 'unavailable' };
    }
    const ms = Date.now() - started;
    if (response.status === 401 || response.status === 403 || response.status === 404) {
      this.log.debug({ event: 'auth-backend', type: body.type, user, status: response.status, ms }, 'auth backend refused');
      return { kind: 'refused' };
    }
    if (response.status !== 200) {
      this.log.warn({ event: 'auth-backend-error', type: body.type, user, status: response.status, ms }, 'auth backend answered with an error');
      return { kind: 'unavailable' };
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (typeof parsed !== 'object' || parsed === null || typeof (parsed as { ok?: unknown }).ok !== 'boolean') {
      this.log.warn({ event: 'auth-backend-error', type: body.type, user, status: 200, ms }, 'auth backend answer is not {"ok": boolean}');
      return { kind: 'unavailable' };
    }
    const answer = parsed as { ok: boolean; username?: unknown; scope?: unknown };
    this.log.debug({ event: 'auth-backend', type: body.type, user, ok: answer.ok, ms }, 'auth backend answered');
    if (!answer.ok) return { kind: 'refused' };
    let name: string | undefined;
    if (answer.username !== undefined) {
      name = typeof answer.username === 'string' ? prepareUsername(answer.username) : undefined;
      if (name === undefined) return { kind: 'refused' };
    }
    const scope = typeof answer.scope === 'string' ? answer.scope.split(' ').filter((s) => s !== '') : [];
    return name === undefined ? { kind: 'accepted', scope } : { kind: 'accepted', username: name, scope };
  }
}
