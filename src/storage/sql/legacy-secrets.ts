// LegacySecretStore on any Kysely dialect: reads the CRAM-MD5/DIGEST-MD5 secrets
// that SqlAccountStore writes together with the SCRAM credentials.
import type { Kysely } from 'kysely';
import { LEGACY_SASL_MECHANISMS, type LegacySaslMechanism, type LegacySaslSecret, type LegacySecretStore } from '../types.js';
import type { Database } from './schema.js';

function isLegacyMechanism(value: string): value is LegacySaslMechanism {
  return (LEGACY_SASL_MECHANISMS as readonly string[]).includes(value);
}

export class SqlLegacySecretStore implements LegacySecretStore {
  constructor(private readonly db: Kysely<Database>) {}

  async get(host: string, username: string, mechanism: LegacySaslMechanism, realm: string): Promise<LegacySaslSecret[]> {
    const rows = await this.db
      .selectFrom('legacy_sasl_secrets')
      .select(['mechanism', 'realm', 'variant', 'secret'])
      .where('host', '=', host)
      .where('username', '=', username)
      .where('mechanism', '=', mechanism)
      .where('realm', '=', realm)
      .orderBy('variant')
      .execute();
    return rows.flatMap((r) =>
      isLegacyMechanism(r.mechanism) ? [{ mechanism: r.mechanism, realm: r.realm, variant: r.variant, secret: Buffer.from(r.secret) }] : [],
    );
  }

  async accountsWithout(host: string, mechanism: LegacySaslMechanism, realm?: string): Promise<string[]> {
    const rows = await this.db
      .selectFrom('accounts')
      .select('accounts.username')
      .where('accounts.host', '=', host)
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('legacy_sasl_secrets')
              .select('legacy_sasl_secrets.username')
              .whereRef('legacy_sasl_secrets.host', '=', 'accounts.host')
              .whereRef('legacy_sasl_secrets.username', '=', 'accounts.username')
              .where('legacy_sasl_secrets.mechanism', '=', mechanism)
              .$if(realm !== undefined, (qb) => qb.where('legacy_sasl_secrets.realm', '=', realm!)),
          ),
        ),
      )
      .orderBy('accounts.username')
      .execute();
    return rows.map((r) => r.username);
  }
}
