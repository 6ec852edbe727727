// The cluster benchmark (bench/cluster, `npm run bench:cluster`) at a tiny size
// against 2 node processes, so that it cannot rot silently: every client logs
// in, every message of every phase arrives exactly once, the Redis figures
// come from the cluster's own commands (logins write the registry, cross-node
// messages go through the streams, same-node ones never touch them), and the
// table is filled in.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runClusterBench } from '../bench/cluster/run.js';
import { mainTable, problems } from '../bench/cluster/format.js';

test('bench:cluster on 2 nodes at a tiny size: figures for every phase, every message delivered once', { timeout: 300_000 }, async () => {
  const clients = 8;
  const r = await runClusterBench({
    sizes: [2],
    clients,
    concurrency: 4,
    messages: 40,
    lightPairs: 2,
    lightMessages: 12,
    warmup: 0,
    idleMs: 500,
    stepTimeoutMs: 30_000,
    phaseTimeoutMs: 120_000,
    stallTimeoutMs: 20_000,
  });
  assert.equal(r.redis.kind, 'private');
  assert.equal(r.sizes.length, 1);
  const s = r.sizes[0]!;
  assert.equal(s.nodes, 2);
  assert.equal(s.login.succeeded, clients, JSON.stringify(s.login.failures));
  assert.equal(s.login.latencyMs.count, clients);
  assert.ok(s.login.perSecond > 0);
  // RFC 6120 §7.7.2.2 and the registry: each login claims its resource (SET NX) and writes its
  // record three times (bind, roster get, initial presence), each write published to the nodes.
  assert.ok((s.login.redis.raw.calls.hset ?? 0) >= 3 * clients, JSON.stringify(s.login.redis.raw.calls));
  assert.ok((s.login.redis.raw.calls.publish ?? 0) >= 3 * clients, JSON.stringify(s.login.redis.raw.calls));
  assert.ok(s.login.redis.commandsPerUnit > 0);
  assert.equal(s.registry.byKind.jid?.keys, clients);
  assert.ok(s.registry.bytesPerSession > 0);
  // Logout: each session leaves the registry (HDEL) and releases its claim.
  assert.equal(s.logout.count, clients);
  assert.ok((s.logout.redis.raw.calls.hdel ?? 0) >= clients, JSON.stringify(s.logout.redis.raw.calls));

  assert.deepEqual(
    s.phases.map((p) => `${p.placement} ${p.load} ${p.pairs}`),
    ['same-node busy 4', 'same-node light 2', 'cross-node busy 4', 'cross-node light 2'],
  );
  for (const p of s.phases) {
    const what = `${p.placement} ${p.load}`;
    assert.equal(p.sent, p.requested, what);
    assert.equal(p.received, p.requested, `${what}: ${p.lost} lost`);
    assert.equal(p.lost, 0, what);
    assert.equal(p.duplicates, 0, what);
    assert.equal(p.latencyMs.count, p.requested, what);
    assert.ok(p.latencyMs.p50 > 0 && p.latencyMs.p99 >= p.latencyMs.p50, what);
    assert.ok(p.perSecond > 0, what);
    const xadd = p.redis.raw.calls.xadd ?? 0;
    // Same node: delivered in the node's memory. Different nodes: through the receiver's stream.
    if (p.placement === 'same-node') assert.equal(xadd, 0, `${what}: ${JSON.stringify(p.redis.raw.calls)}`);
    else assert.ok(xadd > 0 && (p.redis.raw.calls.xdel ?? 0) > 0, `${what}: ${JSON.stringify(p.redis.raw.calls)}`);
  }
  assert.ok(s.phases.find((p) => p.placement === 'cross-node' && p.load === 'busy')!.redis.commandsPerUnit > 0);

  const table = mainTable(r);
  assert.match(table, /\| logins\/s \| [\d,]+ \|/);
  assert.match(table, /\| cross-node: messages\/s \(every pair busy\) \| [\d,]+ \|/);
  assert.match(table, /\| messages lost \/ duplicated \(must be 0\) \| 0 \/ 0 \|/);
  assert.doesNotMatch(table, /NaN|undefined/);
  assert.deepEqual(problems(r), []);
});
