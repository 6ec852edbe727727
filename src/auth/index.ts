// Builds, from the configuration, what authentication needs besides the account
// store: the token verifier, the external password check, the rate limiter.
import type { Config } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import { HttpAuthBackend } from './http.js';
import { JwtTokenVerifier } from './jwt.js';
import { LocalTokenVerifier } from './local-tokens.js';
import { AuthRateLimiter } from './rate-limit.js';
import type { AccountRecorder, AuthServices, TokenStore, TokenVerdict, TokenVerifier } from '../core/credentials.js';

/** A verifier that also demands `scope` among the token's scopes (RFC 6749 §3.3). */
export function requireScope(inner: TokenVerifier, scope: string | undefined, openidConfiguration?: string): TokenVerifier {
  return {
    ...(scope !== undefined && { requiredScope: scope }),
    ...(openidConfiguration !== undefined && { openidConfiguration }),
    async verify(token, host, claimed): Promise<TokenVerdict> {
      const verdict = await inner.verify(token, host, claimed);
      if (verdict.ok && scope !== undefined && !verdict.scope.includes(scope)) return { ok: false, reason: 'insufficient-scope' };
      return verdict;
    },
  };
}

/** The stores authentication reads: accounts (and, with auth.backend: http, records them) and local tokens. */
export interface AuthStores {
  accounts: AccountRecorder;
  tokens: TokenStore;
}

export function createAuthServices(config: Config, storage: AuthStores, log: Logger, now: () => number = () => Date.now()): AuthServices {
  const external = config.auth.backend === 'http' ? new HttpAuthBackend(config.auth.http!, log, storage.accounts) : undefined;
  let tokens: TokenVerifier;
  if (external !== undefined) tokens = external.tokenVerifier();
  else if (config.tokens.verifier === 'jwt') tokens = new JwtTokenVerifier(config.tokens.jwt!, { accounts: storage.accounts, now: () => new Date(now()) });
  else tokens = new LocalTokenVerifier(storage.tokens, () => new Date(now()));
  const services: AuthServices = {
    tokens: requireScope(tokens, config.tokens.required_scope, config.tokens.openid_configuration),
    externalAccounts: external !== undefined,
    limiter: new AuthRateLimiter(config.sasl.rate_limit, now),
  };
  if (external !== undefined) services.passwords = external.passwordVerifier();
  return services;
}
