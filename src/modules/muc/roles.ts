// Affiliations and roles (XEP-0045 §5): who a user is in a room for good, and what
// an occupant may do while in it.
export type Affiliation = 'owner' | 'admin' | 'member' | 'none' | 'outcast';
export type Role = 'moderator' | 'participant' | 'visitor' | 'none';

export const AFFILIATIONS: readonly Affiliation[] = ['owner', 'admin', 'member', 'none', 'outcast'];
export const ROLES: readonly Role[] = ['moderator', 'participant', 'visitor', 'none'];

const AFF_RANK: Record<Affiliation, number> = { owner: 4, admin: 3, member: 2, none: 1, outcast: 0 };

/** Compares affiliations: positive when `a` is above `b` (§5.2, the ordering of privileges). */
export function affRank(a: Affiliation): number {
  return AFF_RANK[a];
}

/** A stored affiliation (anything but 'none'), with the nick a member reserved (§7.10). */
export interface AffiliationRecord {
  affiliation: Exclude<Affiliation, 'none'>;
  nick?: string;
  reason?: string;
}

/** §5.1.2 / §5.2: the role an occupant gets on entering, from its affiliation. */
export function defaultRole(aff: Affiliation, moderated: boolean): Role {
  if (aff === 'owner' || aff === 'admin') return 'moderator';
  if (aff === 'outcast') return 'none';
  if (moderated && aff !== 'member') return 'visitor';
  return 'participant';
}

export function isAffiliation(v: string | undefined): v is Affiliation {
  return v !== undefined && (AFFILIATIONS as readonly string[]).includes(v);
}

export function isRole(v: string | undefined): v is Role {
  return v !== undefined && (ROLES as readonly string[]).includes(v);
}
