// The room's recent messages, sent to a new occupant (XEP-0045 §7.2.14): a bounded
// list, oldest first, from which a join's <history/> picks the tail it asks for.
import type { Element } from '../../xml/element.js';

export interface HistoryEntry {
  /** The room's stanza id (XEP-0359), also the archive's id. */
  readonly id: string;
  /** When the room received it (ms since the epoch). */
  readonly stamp: number;
  /** The message as broadcast, without 'to'. */
  stanza: Element;
  /** Characters of the XML of the message (§7.2.14 maxchars counts the complete stanza). */
  chars: number;
}

/** What a join asked for (§7.2.14); absent fields do not limit. */
export interface HistoryRequest {
  maxStanzas?: number;
  maxChars?: number;
  /** Only messages newer than this (ms since the epoch): from 'seconds' or 'since'. */
  after?: number;
}

export class RoomHistory {
  private entries: HistoryEntry[] = [];

  constructor(private max: number) {}

  get size(): number {
    return this.entries.length;
  }

  setMax(max: number): void {
    this.max = max;
    this.trim();
  }

  push(entry: HistoryEntry): void {
    this.entries.push(entry);
    this.trim();
  }

  private trim(): void {
    const over = this.entries.length - this.max;
    if (over > 0) this.entries.splice(0, over);
  }

  find(id: string): HistoryEntry | undefined {
    for (let i = this.entries.length - 1; i >= 0; i--) if (this.entries[i]!.id === id) return this.entries[i];
    return undefined;
  }

  remove(id: string): void {
    const i = this.entries.findIndex((e) => e.id === id);
    if (i >= 0) this.entries.splice(i, 1);
  }

  /** The newest entries that fit every limit of the request, oldest first. */
  select(req: HistoryRequest): HistoryEntry[] {
    const out: HistoryEntry[] = [];
    let chars = 0;
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const e = this.entries[i]!;
      if (req.maxStanzas !== undefined && out.length >= req.maxStanzas) break;
      if (req.after !== undefined && e.stamp <= req.after) break;
      if (req.maxChars !== undefined && chars + e.chars > req.maxChars) break;
      chars += e.chars;
      out.push(e);
    }
    return out.reverse();
  }
}

/** Reads a join's <history/> element (§7.2.14); bad values are ignored as if absent. */
export function parseHistoryRequest(history: Element | undefined, now: number): HistoryRequest {
  if (!history) return {};
  const req: HistoryRequest = {};
  const int = (name: string): number | undefined => {
    const v = history.attrs[name];
    if (v === undefined || !/^\d+$/.test(v)) return undefined;
    return Number(v);
  };
  req.maxStanzas = int('maxstanzas');
  req.maxChars = int('maxchars');
  const seconds = int('seconds');
  if (seconds !== undefined) req.after = now - seconds * 1000;
  const since = history.attrs.since;
  if (since !== undefined) {
    const t = Date.parse(since);
    if (Number.isFinite(t)) req.after = Math.max(req.after ?? -Infinity, t);
  }
  return req;
}
