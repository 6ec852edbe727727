// Every owner of stored data, for `shoal export`, `shoal import` and `shoal migrate`:
// the central tables first, then each module that keeps tables of its own. A module
// that adds tables adds its DataOwner here (one line; see storage/sql/transfer.ts),
// otherwise `shoal export` refuses a database holding them rather than leave them behind.
import { coreData, type DataOwner } from '../storage/sql/transfer.js';
import { presenceData } from './presence/store.js';
import { offlineData } from './offline/store.js';
import { pushData } from './push/store.js';
import { pepData } from './pep/store.js';
import { mamData } from './mam/store.js';
import { mucData } from './muc/store.js';
import { uploadData } from './upload/store.js';

export function dataOwners(): DataOwner[] {
  return [coreData, presenceData, offlineData, pushData, pepData, mamData, mucData, uploadData];
}
