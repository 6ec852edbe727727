// What the mam module offers other modules and operators' tools (ModuleContext.use('mam')).
import type { Element } from '../../xml/element.js';
import type { ArchiveReader } from './archive.js';

export type { ArchiveReader, ArchivedMessage, ArchivePosition, ArchiveRange, WithFilter } from './archive.js';

export interface MamApi {
  /** Runs one retention pass now (mam.max_age_days, mam.max_per_user); resolves with how many messages were deleted. */
  retention(): Promise<number>;
  /** XEP-0313 §4.1.5: the query form, for an archive another module keeps (a group chat room's). */
  queryForm(): Element;
  /** XEP-0313 §6: the metadata of such an archive. */
  metadata(archive: ArchiveReader): Promise<Element>;
  /**
   * XEP-0313 §4: runs a query (its <query/> element) on such an archive: each result message,
   * from `archiveJid` to `to`, goes to `send` (awaited, in order), and the <fin/> to put in the
   * IQ result is returned. Throws the StanzaError to answer a bad query with.
   */
  query(archive: ArchiveReader, query: Element, archiveJid: string, to: string, send: (result: Element) => Promise<void>): Promise<Element>;
}
