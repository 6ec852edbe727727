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
import { smModule } from './sm/sm.js';
import { carbonsModule } from './carbons/carbons.js';
import { pushModule } from './push/push.js';
import { csiModule } from './csi/csi.js';
import { pepModule } from './pep/pep.js';
import { mamModule } from './mam/mam.js';
import { mucModule } from './muc/muc.js';
import { extdiscoModule } from './extdisco/extdisco.js';
import { uploadModule } from './upload/upload.js';

export function defaultModules(): Module[] {
  // The order of their hooks is set by each hook's priority, not by this list; modules
  // start in this order except where `depends` asks for another.
  return [pingModule, discoModule, versionModule, rosterModule, blockingModule, vcardModule, offlineModule, presenceModule, smModule, csiModule, mamModule, carbonsModule, pushModule, pepModule, mucModule, extdiscoModule, uploadModule];
}
