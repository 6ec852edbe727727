// A room's configuration (XEP-0045 §10.2) and its data form (XEP-0004, FORM_TYPE
// muc#roomconfig, §15.5.3): the form an owner gets, and the submitted form read back.
import { x, type Element } from '../../xml/element.js';
import { StanzaError } from '../../core/errors.js';
import { NS_DATA, NS_ROOMCONFIG } from './ns.js';

export type Whois = 'moderators' | 'anyone';
export type AllowPm = 'anyone' | 'participants' | 'moderators' | 'none';

export interface RoomConfig {
  name: string;
  description: string;
  /** §10.2 muc#roomconfig_persistentroom: kept when the last occupant leaves, and in storage. */
  persistent: boolean;
  /** muc#roomconfig_publicroom: listed in the service's disco#items. */
  public: boolean;
  membersOnly: boolean;
  moderated: boolean;
  /** The room secret; '' for none. */
  password: string;
  /** muc#roomconfig_whois: who may see occupants' real JIDs (semi-anonymous: moderators). */
  whois: Whois;
  changeSubject: boolean;
  /** muc#roomconfig_allowinvites: occupants may send mediated invitations. */
  allowInvites: boolean;
  allowPm: AllowPm;
  /** 0: the service's limit. */
  maxUsers: number;
  /** muc#roomconfig_enablelogging: a persistent room archives its messages (status 170). */
  logging: boolean;
}

export function defaultRoomConfig(): RoomConfig {
  return {
    name: '',
    description: '',
    persistent: false,
    public: true,
    membersOnly: false,
    moderated: false,
    password: '',
    whois: 'moderators',
    changeSubject: false,
    allowInvites: false,
    allowPm: 'anyone',
    maxUsers: 0,
    logging: true,
  };
}

/** Reads a stored configuration, taking defaults for what is missing or of the wrong type. */
export function parseStoredConfig(json: string): RoomConfig {
  const config = defaultRoomConfig();
  let stored: unknown;
  try {
    stored = JSON.parse(json);
  } catch {
    return config;
  }
  if (typeof stored !== 'object' || stored === null) return config;
  const s = stored as Record<string, unknown>;
  const c = config as unknown as Record<string, unknown>;
  for (const key of Object.keys(config)) {
    if (key in s && typeof s[key] === typeof c[key]) c[key] = s[key];
  }
  if (config.whois !== 'anyone') config.whois = 'moderators';
  if (!['anyone', 'participants', 'moderators', 'none'].includes(config.allowPm)) config.allowPm = 'anyone';
  return config;
}

const field = (v: string, type: string, label: string, values: string[], options?: [string, string][]): Element => {
  const f = x('field', NS_DATA, { var: v, type, label });
  for (const [value, optLabel] of options ?? []) f.append(x('option', NS_DATA, { label: optLabel }, x('value', NS_DATA, {}, value)));
  for (const value of values) f.append(x('value', NS_DATA, {}, value));
  return f;
};
const bool = (b: boolean): string => (b ? '1' : '0');

/** XEP-0045 §10.2 example 163: the configuration form with the current values. */
export function configForm(config: RoomConfig, maxUsersLimit: number): Element {
  return x(
    'x',
    NS_DATA,
    { type: 'form' },
    x('title', NS_DATA, {}, 'Room configuration'),
    field('FORM_TYPE', 'hidden', '', [NS_ROOMCONFIG]),
    field('muc#roomconfig_roomname', 'text-single', 'Name', [config.name]),
    field('muc#roomconfig_roomdesc', 'text-single', 'Description', [config.description]),
    field('muc#roomconfig_persistentroom', 'boolean', 'Keep the room when it is empty', [bool(config.persistent)]),
    field('muc#roomconfig_publicroom', 'boolean', 'List the room in the directory', [bool(config.public)]),
    field('muc#roomconfig_membersonly', 'boolean', 'Only members may enter', [bool(config.membersOnly)]),
    field('muc#roomconfig_moderatedroom', 'boolean', 'Only participants with voice may speak', [bool(config.moderated)]),
    field('muc#roomconfig_passwordprotectedroom', 'boolean', 'A password is needed to enter', [bool(config.password !== '')]),
    field('muc#roomconfig_roomsecret', 'text-private', 'Password', [config.password]),
    field('muc#roomconfig_whois', 'list-single', 'Who may see real JIDs', [config.whois], [
      ['moderators', 'Moderators only'],
      ['anyone', 'Anyone'],
    ]),
    field('muc#roomconfig_changesubject', 'boolean', 'Participants may change the subject', [bool(config.changeSubject)]),
    field('muc#roomconfig_allowinvites', 'boolean', 'Occupants may invite others', [bool(config.allowInvites)]),
    field('muc#roomconfig_allowpm', 'list-single', 'Who may send private messages', [config.allowPm], [
      ['anyone', 'Anyone'],
      ['participants', 'Participants'],
      ['moderators', 'Moderators'],
      ['none', 'Nobody'],
    ]),
    field('muc#roomconfig_maxusers', 'text-single', `Most occupants (0: ${maxUsersLimit})`, [String(config.maxUsers)]),
    field('muc#roomconfig_enablelogging', 'boolean', 'Archive messages (persistent rooms)', [bool(config.logging)]),
  );
}

function parseBool(v: string, name: string): boolean {
  // XEP-0004 §3.3: boolean values are 0, 1, false, true.
  if (v === '1' || v === 'true') return true;
  if (v === '0' || v === 'false') return false;
  throw new StanzaError('not-acceptable', `${name} is not a boolean`);
}

/**
 * Applies a submitted form (type 'submit') to a copy of `current` (§10.2: fields left out keep
 * their value); not-acceptable for a wrong FORM_TYPE or value.
 */
export function applyConfigForm(current: RoomConfig, form: Element, maxUsersLimit: number): RoomConfig {
  const next = { ...current };
  let passwordProtected: boolean | undefined;
  for (const f of form.getChildren('field', NS_DATA)) {
    const name = f.attrs.var;
    const values = f.getChildren('value', NS_DATA).map((v) => v.text());
    const v = values[0] ?? '';
    switch (name) {
      case 'FORM_TYPE':
        if (v !== NS_ROOMCONFIG) throw new StanzaError('not-acceptable', 'not a muc#roomconfig form');
        break;
      case 'muc#roomconfig_roomname':
        next.name = v.slice(0, 200);
        break;
      case 'muc#roomconfig_roomdesc':
        next.description = v.slice(0, 1000);
        break;
      case 'muc#roomconfig_persistentroom':
        next.persistent = parseBool(v, name);
        break;
      case 'muc#roomconfig_publicroom':
        next.public = parseBool(v, name);
        break;
      case 'muc#roomconfig_membersonly':
        next.membersOnly = parseBool(v, name);
        break;
      case 'muc#roomconfig_moderatedroom':
        next.moderated = parseBool(v, name);
        break;
      case 'muc#roomconfig_passwordprotectedroom':
        passwordProtected = parseBool(v, name);
        break;
      case 'muc#roomconfig_roomsecret':
        next.password = v.slice(0, 200);
        break;
      case 'muc#roomconfig_whois':
        if (v !== 'moderators' && v !== 'anyone') throw new StanzaError('not-acceptable', `${name} must be moderators or anyone`);
        next.whois = v;
        break;
      case 'muc#roomconfig_changesubject':
        next.changeSubject = parseBool(v, name);
        break;
      case 'muc#roomconfig_allowinvites':
        next.allowInvites = parseBool(v, name);
        break;
      case 'muc#roomconfig_allowpm':
        if (v !== 'anyone' && v !== 'participants' && v !== 'moderators' && v !== 'none') throw new StanzaError('not-acceptable', `${name} is not a known value`);
        next.allowPm = v;
        break;
      case 'muc#roomconfig_maxusers': {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 0) throw new StanzaError('not-acceptable', `${name} must be a whole number`);
        next.maxUsers = Math.min(n, maxUsersLimit);
        break;
      }
      case 'muc#roomconfig_enablelogging':
        next.logging = parseBool(v, name);
        break;
      default:
        // Fields of other forms or later versions are ignored (XEP-0004 §3.4 lets a service do so).
        break;
    }
  }
  if (passwordProtected === false) next.password = '';
  else if (passwordProtected === true && next.password === '') throw new StanzaError('not-acceptable', 'a password-protected room needs a password');
  return next;
}

/** Whether the room's messages go to its archive (§7.2.12: the room is logged, status 170). */
export function isArchived(config: RoomConfig): boolean {
  return config.persistent && config.logging;
}
