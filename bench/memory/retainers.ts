// Who holds the objects a heap snapshot gained: for every object of the given
// kinds that is in snapshot B and not in A (V8 keeps object ids across the
// snapshots of one process), the chain of its first strong retainers, grouped
// and counted. What found the randomUUID() cons strings and saxes' retained
// tags (README.md):
//
//   node --import tsx bench/memory/run.ts --clients 2000 --mode shoal --keep
//   node --max-old-space-size=6000 --import tsx bench/memory/retainers.ts A.heapsnapshot B.heapsnapshot \
//     '(concatenated string)' 'Object' [--depth 4]
//
// Kinds are the keys of run.ts's per-constructor table.
import { readFileSync } from 'node:fs';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]]; edge_fields: string[]; edge_types: [string[], ...unknown[]] } };
  nodes: number[];
  edges: number[];
  strings: string[];
}

const argv = process.argv.slice(2);
const depthAt = argv.indexOf('--depth');
const depth = depthAt >= 0 ? Number(argv.splice(depthAt, 2)[1]) : 4;
const [fileA, fileB, ...kinds] = argv;
if (!fileA || !fileB || kinds.length === 0) throw new Error('usage: retainers.ts A.heapsnapshot B.heapsnapshot KIND... [--depth N]');

const load = (f: string): Snapshot => JSON.parse(readFileSync(f, 'utf8')) as Snapshot;
const a = load(fileA);
const b = load(fileB);
const meta = b.snapshot.meta;
const W = meta.node_fields.length;
const EW = meta.edge_fields.length;
const fType = meta.node_fields.indexOf('type');
const fName = meta.node_fields.indexOf('name');
const fId = meta.node_fields.indexOf('id');
const fSize = meta.node_fields.indexOf('self_size');
const fEdges = meta.node_fields.indexOf('edge_count');
const nodeTypes = meta.node_types[0];
const edgeTypes = meta.edge_types[0];
const { nodes, edges, strings } = b;
const n = nodes.length / W;

const before = new Set<number>();
for (let i = 0; i < a.nodes.length; i += W) before.add(a.nodes[i + fId]!);

// Reverse (strong) edges: for each node, the nodes pointing at it and through which edge.
const firstEdge = new Int32Array(n + 1);
for (let i = 0, e = 0; i < n; i++) {
  firstEdge[i] = e;
  e += nodes[i * W + fEdges]! * EW;
}
firstEdge[n] = edges.length;
const strong = (e: number): boolean => edgeTypes[edges[e]!] !== 'weak';
const retainerCount = new Int32Array(n + 1);
for (let e = 0; e < edges.length; e += EW) if (strong(e)) retainerCount[edges[e + 2]! / W + 1]!++;
for (let i = 0; i < n; i++) retainerCount[i + 1]! += retainerCount[i]!;
const retainerFrom = new Int32Array(retainerCount[n]!);
const retainerEdge = new Int32Array(retainerCount[n]!);
const fill = retainerCount.slice(0, n);
for (let i = 0; i < n; i++) {
  for (let e = firstEdge[i]!; e < firstEdge[i + 1]!; e += EW) {
    if (!strong(e)) continue;
    const to = edges[e + 2]! / W;
    retainerFrom[fill[to]!] = i;
    retainerEdge[fill[to]!++] = e;
  }
}

const typeOf = (i: number): string => nodeTypes[nodes[i * W + fType]!]!;
/** The same keys as heap.ts's summarize(). */
function keyOf(i: number): string {
  const type = typeOf(i);
  const name = strings[nodes[i * W + fName]!] ?? '';
  if (type === 'object' || type === 'native') return name.length > 70 ? `${name.slice(0, 70)}…` : name;
  if (type === 'closure') return `closure ${name || '(anonymous)'}`;
  if (['string', 'concatenated string', 'sliced string', 'number', 'heap number'].includes(type)) return `(${type})`;
  return `(${type}) ${name.length > 50 ? `${name.slice(0, 50)}…` : name}`;
}
function edgeName(e: number): string {
  const type = edgeTypes[edges[e]!];
  const v = edges[e + 1]!;
  return type === 'element' || type === 'hidden' ? `[${v}]` : String(strings[v]);
}

for (const kind of kinds) {
  const paths = new Map<string, { count: number; size: number }>();
  let total = 0;
  for (let i = 0; i < n; i++) {
    if (keyOf(i) !== kind || before.has(nodes[i * W + fId]!)) continue;
    total++;
    const parts: string[] = [];
    for (let cur = i, d = 0; d < depth; d++) {
      // The first retainer that is an object of ours rather than an internal array, when there is one.
      let best = -1;
      let bestEdge = -1;
      for (let r = retainerCount[cur]!; r < retainerCount[cur + 1]!; r++) {
        const p = retainerFrom[r]!;
        const t = typeOf(p);
        if (t === 'synthetic' && d > 0) continue;
        best = p;
        bestEdge = retainerEdge[r]!;
        if (t !== 'hidden' && t !== 'array') break;
      }
      if (best < 0) break;
      parts.push(`${edgeName(bestEdge)}<-${keyOf(best)}`);
      cur = best;
    }
    const path = parts.join(' | ');
    const row = paths.get(path) ?? { count: 0, size: 0 };
    row.count++;
    row.size += nodes[i * W + fSize]!;
    paths.set(path, row);
  }
  console.log(`== ${kind}: ${total} new`);
  for (const [path, r] of [...paths].sort((x, y) => y[1].size - x[1].size).slice(0, 25)) {
    console.log(`${String(r.count).padStart(7)} ${String(r.size).padStart(9)} B  ${path}`);
  }
}
