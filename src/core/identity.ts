// Who a client says it is: the preparation of SASL user names and the
// authorization-identity rule (RFC 6120 §6.3.7, §6.3.8), shared by the SASL
// mechanisms and the external account backends.
import { JidError, prepDomainpart, prepLocalpart, tryParseJid } from '../jid/jid.js';

/**
 * Prepares a SASL simple user name (RFC 6120 §6.3.7): the authentication identity
 * is the localpart of the account's JID, so it gets exactly the localpart
 * preparation (RFC 7622 §3.3, UsernameCaseMapped of RFC 8265 §3.3), the same one
 * account names and JIDs get. Undefined when the name cannot be a localpart.
 */
export function prepareUsername(raw: string): string | undefined {
  try {
    return prepLocalpart(raw);
  } catch (e) {
    if (e instanceof JidError) return undefined;
    throw e;
  }
}

function prepareDomain(host: string): string | undefined {
  try {
    return prepDomainpart(host);
  } catch (e) {
    if (e instanceof JidError) return undefined;
    throw e;
  }
}

/**
 * RFC 6120 §6.3.8: a client may only ask to act as itself. The authzid is accepted
 * when it names the authenticated account, either as its bare JID
 * (localpart@host) or as the bare localpart.
 */
export function authzidMatches(authzid: string, username: string, host: string): boolean {
  if (!authzid.includes('@') && !authzid.includes('/')) return prepareUsername(authzid) === username;
  const jid = tryParseJid(authzid);
  return jid !== undefined && jid.isBare() && jid.local === username && jid.domain === prepareDomain(host);
}

/**
 * The prepared localpart an identity names: a bare localpart, or a bare JID of this
 * host (RFC 6120 §6.3.8). Undefined when it names nothing here.
 */
export function claimedLocalpart(identity: string, host: string): string | undefined {
  if (identity.includes('@') || identity.includes('/')) {
    const jid = tryParseJid(identity);
    if (jid === undefined || jid.local === '' || !authzidMatches(identity, jid.local, host)) return undefined;
    return jid.local;
  }
  return prepareUsername(identity);
}
