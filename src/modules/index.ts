// The feature modules a server runs by default, in registration order.
import type { Module } from './api.js';
import { pingModule } from './ping/ping.js';
import { discoModule } from './disco/disco.js';
import { versionModule } from './version/version.js';
import { rosterModule } from './roster/roster.js';
import { blockingModule } from './blocking/blocking.js';
import { vcardModule } from './vcard/vcard.js';
import { offlineModule } from './offline/offline.js';
import { presenceModule } from './presence/presence.js';

export function defaultModules(): Module[] {
  // Hooks run in registration order and the presence module's hook ends the processing of
  // what it handles: blocking must refuse a stanza before presence acts on it, and vcard
  // must stamp the avatar hash before presence broadcasts.
  return [pingModule, discoModule, versionModule, rosterModule, blockingModule, vcardModule, offlineModule, presenceModule];
}
