// The load report as a few lines of text for a person.
import type { LoadReport } from './run.js';

export function formatReport(r: LoadReport): string {
  const l = r.login;
  const lines = [
    `target ${r.target.host}:${r.target.port} (${r.target.domain}), ${r.clients} clients, ${r.concurrency} at a time`,
    `login: ${l.succeeded}/${l.attempted} in ${(l.elapsedMs / 1000).toFixed(2)} s = ${l.perSecond}/s (sustained ${l.sustainedPerSecond}/s), ` +
      `latency p50 ${l.latencyMs.p50} ms p95 ${l.latencyMs.p95} ms p99 ${l.latencyMs.p99} ms; ${l.tls.protocol} ${l.tls.cipher}`,
  ];
  if (r.warmup) {
    const w = r.warmup;
    const last = w.lastRoundCpuPer1000Logins === undefined ? '' : `; round ${w.rounds} of ${w.rounds}: ${w.lastRoundCpuPer1000Logins} s per 1000 logins`;
    lines.splice(
      1,
      0,
      `warm-up (not measured): ${w.succeeded}/${w.clients} logged in and out in ${(w.elapsedMs / 1000).toFixed(2)} s, ${w.failed} failed, server CPU ${w.cpuPer1000Logins} s per 1000 logins${last}`,
    );
  }
  lines.push(`  median per step (ms): ${Object.entries(l.stepP50Ms).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  for (const [k, n] of Object.entries(l.failures)) lines.push(`  failed ${n}x: ${k}`);
  lines.push(`roster items per client: ${r.roster.minItems}..${r.roster.maxItems}; presence received: ${r.presence.received}`);
  if (r.presence.awaited > 0) lines.push(`presence fan-out (${r.presence.awaited} each): ${r.presence.complete ? 'complete' : 'INCOMPLETE'} after ${r.presence.elapsedMs} ms`);
  if (r.messages) {
    const m = r.messages;
    lines.push(
      `messages: ${m.received}/${m.requested} in ${(m.elapsedMs / 1000).toFixed(2)} s = ${m.perSecond}/s (${m.mode}), lost ${m.lost}, ` +
        `latency p50 ${m.latencyMs.p50} ms p95 ${m.latencyMs.p95} ms p99 ${m.latencyMs.p99} ms`,
    );
  }
  if (r.resume) {
    const m = r.resume;
    lines.push(
      `resume: ${m.resumed}/${m.dropped} in ${(m.elapsedMs / 1000).toFixed(2)} s = ${m.perSecond}/s, latency p50 ${m.latencyMs.p50} ms p99 ${m.latencyMs.p99} ms; ` +
        `messages while gone ${m.received}/${m.expected} received, lost ${m.lost}, duplicated ${m.duplicates}`,
    );
    lines.push(`  median per step (ms): ${Object.entries(m.stepP50Ms).map(([k, v]) => `${k} ${v}`).join(', ')}`);
    for (const [k, n] of Object.entries(m.failures)) lines.push(`  failed ${n}x: ${k}`);
  }
  if (r.server) {
    const s = r.server;
    lines.push(
      `server pid ${s.pid}: RSS ${(s.rssBeforeKiB / 1024).toFixed(1)} -> ${(s.rssOnlineKiB / 1024).toFixed(1)} MiB (${s.rssPerClientKiB} KiB per client); ` +
        `CPU ${s.cpuPer1000Logins} s per 1000 logins, ${s.cpuPer100kMessages} s per 100k messages, ${s.cpuPer1000Resumes} s per 1000 resumes, idle ${s.idleCpuPercent}%`,
    );
  }
  const g = r.generator;
  lines.push(`generator: ${g.cpuS} s CPU (${g.loginCpuPercent}% of a core during login, ${g.messagesCpuPercent}% during messages, ${g.resumeCpuPercent}% during resume), max RSS ${g.maxRssMiB} MiB`);
  if (r.problems.count > 0) lines.push(`problems on ${r.problems.count} clients: ${r.problems.examples.join('; ')}`);
  return lines.join('\n');
}
