// The feature modules a server runs by default, in registration order.
import type { Module } from './api.js';
import { pingModule } from './ping/ping.js';
import { discoModule } from './disco/disco.js';
import { versionModule } from './version/version.js';
import { rosterModule } from './roster/roster.js';
import { presenceModule } from './presence/presence.js';

export function defaultModules(): Module[] {
  return [pingModule, discoModule, versionModule, rosterModule, presenceModule];
}
