// Summarises a V8 heap snapshot (.heapsnapshot, as written by v8.writeHeapSnapshot)
// by constructor: count and self size per key, and the difference between two
// snapshots divided by the number of connections added in between. Self sizes
// (not retained sizes) add up without double counting, so the per-connection
// rows sum to the heap growth per connection.
import { readFileSync } from 'node:fs';

export interface HeapRow {
  key: string;
  count: number;
  size: number;
}

interface RawSnapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

/** Groups a snapshot's nodes: objects by constructor, closures by function name, the rest by type. */
export function summarize(file: string): Map<string, HeapRow> {
  const raw = JSON.parse(readFileSync(file, 'utf8')) as RawSnapshot;
  const fields = raw.snapshot.meta.node_fields;
  const types = raw.snapshot.meta.node_types[0];
  const width = fields.length;
  const fType = fields.indexOf('type');
  const fName = fields.indexOf('name');
  const fSize = fields.indexOf('self_size');
  const rows = new Map<string, HeapRow>();
  const { nodes, strings } = raw;
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + fType]!]!;
    const name = strings[nodes[i + fName]!] ?? '';
    let key: string;
    if (type === 'object' || type === 'native') key = name.length > 70 ? `${name.slice(0, 70)}…` : name;
    else if (type === 'closure') key = `closure ${name || '(anonymous)'}`;
    else if (type === 'string' || type === 'concatenated string' || type === 'sliced string' || type === 'number' || type === 'heap number') key = `(${type})`;
    else key = `(${type}) ${name.length > 50 ? `${name.slice(0, 50)}…` : name}`;
    const row = rows.get(key);
    const size = nodes[i + fSize]!;
    if (row) {
      row.count++;
      row.size += size;
    } else rows.set(key, { key, count: 1, size });
  }
  return rows;
}

/** Growth from `before` to `after`, per connection, largest first. */
export function perConnection(before: Map<string, HeapRow>, after: Map<string, HeapRow>, connections: number): HeapRow[] {
  const out: HeapRow[] = [];
  for (const [key, a] of after) {
    const b = before.get(key);
    const count = (a.count - (b?.count ?? 0)) / connections;
    const size = (a.size - (b?.size ?? 0)) / connections;
    if (Math.abs(size) >= 1 || Math.abs(count) >= 0.5) out.push({ key, count, size });
  }
  return out.sort((x, y) => y.size - x.size);
}
