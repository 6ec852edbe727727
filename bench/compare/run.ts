// `npm run bench:compare`: Shoal, Prosody and ejabberd side by side on this
// machine. Installs the two Debian packages when missing, gives every server
// the same accounts, rosters, certificate and settings, runs the same scenarios
// against each (server pinned to CPU 0, load generator to CPU 1), and writes
// bench/RESULTS.md and bench/RESULTS.png. Everything listens and connects on
// 127.0.0.1 only; every phase is bounded in time.
import { spawnSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { existsSync, mkdtempSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import type { LoadReport } from '../load/run.js';
import { makeBenchData, scramCacheFor } from './accounts.js';
import { provisionShoal, provisionProsody, ejabberdTerms } from './provision.js';
import { children, ejabberd, prosody, repoRoot, shoal, type Launch, type ServerKind } from './servers.js';
import { archivingTable, buildTable, capacityTargets, failedChecks, medianRun, repeatsTable, targets, type CpuShare, type Results, type ScenarioName, type ScenarioReport } from './table.js';
import { summarizeProfile } from './profile.js';
import { measure, runGenerator, scenarios, warmupRounds, type Scenario } from './scenarios.js';
import { processTree } from '../load/proc.js';
import { drawChart } from './chart.js';
import { extraFailedChecks, extraPlans, extrasMarkdown, runExtras, type ExtraResults } from './room-ws-run.js';
import { commandOutput, ensurePackages, has, machine, makeCertificate, nofileLimit } from '../shared/system.js';

const USAGE = `Usage: npm run bench:compare -- [options]

  --servers LIST        shoal,prosody,ejabberd (default all three)
  --scenarios LIST      login,idle,chat,chat-mam,roster,resume,room,ws (default all eight; chat-mam
                        is chat with every message archived: run it with chat for the cost of archiving)
  --scale F             multiply every client and message count by F (e.g. 0.1 for a quick run)
  --login-clients N     default 2000      --login-concurrency N   default 200
  --login-warmup N      accounts logged in and out, unmeasured, before the login scenario's
                        measured logins (default: as many as --login-clients; 0: none)
  --login-warmup-rounds R  the warm-up accounts log in and out R times (default 3): V8 is
                        still compiling Shoal's hot code during the second round
  --login-repeat N      run the login scenario N times on every server, interleaved (default 3):
                        the targets take each figure's median, the table shows the median run
  --idle-clients N      default 10000     --idle-concurrency N    default 200
  --chat-clients N      default 1000      --chat-messages N       default 20000 (chat and chat-mam)
  --roster-users N      default 200       --roster-contacts N     default 500
  --resume-clients N    default 1000      --resume-messages K     default 5
  --room-occupants N    default 200       --room-messages K       default 20 (per occupant)
  --ws-clients N        default 1000      --ws-messages N         default 20000
  --ws-warmup N         accounts logged in and out over WebSocket, unmeasured, before the ws
                        scenario's measured logins (default: as many as --ws-clients; 0: none)
  --profile WHAT        auto (Shoal's hottest scenario), none, or a scenario name (default auto)
  --no-install          do not apt-get install missing servers (skip them instead)
  --no-build            skip npm run build and run Shoal from source through tsx
  --shoal-malloc LIB    run Shoal with this malloc preloaded (LD_PRELOAD), e.g.
                        /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 (Debian libjemalloc2), as the
                        README's deployment section recommends; default: glibc's
  --keep                keep the temp dir (configs, data, logs)
  --out FILE            results markdown (default bench/RESULTS.md; the chart goes beside it as .png)
`;

/** Open files a server or the generator needs besides its client sockets (listeners, logs, storage, libraries). */
const FD_MARGIN = 1024;

const log = (line: string): void => void process.stderr.write(`[compare] ${line}\n`);

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => res(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

async function main(): Promise<number> {
  const { values: v } = parseArgs({
    options: {
      servers: { type: 'string' },
      scenarios: { type: 'string' },
      scale: { type: 'string' },
      'login-clients': { type: 'string' },
      'login-concurrency': { type: 'string' },
      'login-warmup': { type: 'string' },
      'login-warmup-rounds': { type: 'string' },
      'login-repeat': { type: 'string' },
      'idle-clients': { type: 'string' },
      'idle-concurrency': { type: 'string' },
      'chat-clients': { type: 'string' },
      'chat-messages': { type: 'string' },
      'roster-users': { type: 'string' },
      'roster-contacts': { type: 'string' },
      'resume-clients': { type: 'string' },
      'resume-messages': { type: 'string' },
      'room-occupants': { type: 'string' },
      'room-messages': { type: 'string' },
      'ws-clients': { type: 'string' },
      'ws-messages': { type: 'string' },
      'ws-warmup': { type: 'string' },
      profile: { type: 'string', default: 'auto' },
      'no-install': { type: 'boolean', default: false },
      'no-build': { type: 'boolean', default: false },
      'shoal-malloc': { type: 'string' },
      keep: { type: 'boolean', default: false },
      out: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (v.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const t0 = Date.now();
  const loadBefore = loadavg()[0]!;
  if (loadBefore > 0.5) log(`warning: load average ${loadBefore.toFixed(2)} before the run: other work on this machine will skew the figures`);
  const outFile = v.out ?? join(repoRoot, 'bench', 'RESULTS.md');
  const shoalMalloc = v['shoal-malloc'];
  if (shoalMalloc !== undefined && !existsSync(shoalMalloc)) throw new Error(`--shoal-malloc: no such file ${shoalMalloc}`);
  const wanted = (v.servers ?? 'shoal,prosody,ejabberd').split(',');
  const list = scenarios(v);
  const scale = Number(v.scale ?? 1);
  const extras = extraPlans(v, typeof v.scenarios === 'string' ? v.scenarios.split(',') : undefined, scale);

  // Every client is a socket on both sides; the servers open files of their own besides. Where the
  // hard limit cannot be raised (no CAP_SYS_RESOURCE, e.g. in a container), say so before anything long.
  const mostClients = Math.max(0, ...list.map((s) => Number(s.args[s.args.indexOf('--clients') + 1])), ...extras.map((p) => p.clients));
  const nofile = nofileLimit(mostClients + FD_MARGIN);
  if (mostClients + FD_MARGIN > nofile) {
    throw new Error(
      `${mostClients} connections need an open-file limit of ${mostClients + FD_MARGIN} in the server and the generator; ` +
        `this shell's hard limit is ${nofile} and cannot be raised here (prlimit needs CAP_SYS_RESOURCE): ` +
        `run from a shell with a higher limit (ulimit -Hn) or with fewer clients (at most ${nofile - FD_MARGIN})`,
    );
  }

  // --- Packages ---
  const needed = [...(wanted.includes('prosody') ? ['prosody'] : []), ...(wanted.includes('ejabberd') ? ['ejabberd'] : []), 'gnuplot-nox'];
  const stillMissing = ensurePackages(needed, !v['no-install'], log);
  if (!has('openssl')) throw new Error('openssl is needed to make the test certificate');

  // --- Shoal build ---
  let built = false;
  if (!v['no-build']) {
    log('building Shoal (npm run build)');
    built = spawnSync('npm', ['run', '-s', 'build'], { cwd: repoRoot, stdio: ['ignore', 'inherit', 'inherit'] }).status === 0;
    if (!built) log('build failed: Shoal runs from source through tsx instead');
  }

  // --- Temp dir, certificate, accounts ---
  const dir = mkdtempSync(join(tmpdir(), 'shoal-compare-'));
  const cleanup = (): void => {
    killAll();
    if (!v.keep) rmSync(dir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  try {
    // One ECDSA P-256 certificate for all three servers: the same handshake cost everywhere.
    const tls = makeCertificate(dir);

    const argOf = (s: Scenario, name: string): number => (s.args.includes(name) ? Number(s.args[s.args.indexOf(name) + 1]) : 0);
    // The warm-up logs in the accounts after the measured ones (user N+1 .. N+W).
    const clientsOf = (s: Scenario): number => argOf(s, '--clients') + argOf(s, '--warmup');
    const plainUsers = Math.max(0, ...list.filter((s) => !s.ownAccounts).map(clientsOf), ...extras.map((p) => p.clients + (p.warmup ?? 0)));
    const resumeScenario = list.find((s) => s.name === 'resume');
    const smPairs = resumeScenario ? clientsOf(resumeScenario) / 2 : 0;
    const rosterScenario = list.find((s) => s.name === 'roster');
    const rosterUsers = rosterScenario ? argOf(rosterScenario, '--clients') : 0;
    const contacts = rosterScenario ? Math.max(1, Math.round(Number(v['roster-contacts'] ?? 500) * (v['roster-contacts'] === undefined ? scale : 1))) : 0;
    log(`deriving SCRAM-SHA-1 credentials for ${plainUsers + rosterUsers + 2 * smPairs} users and more contacts`);
    const data = await makeBenchData('localhost', { plainUsers, rosterUsers, contactsPerUser: contacts, smPairs });
    const cacheFile = join(dir, 'scram-cache.jsonl');
    scramCacheFor(data).save(cacheFile);
    log(`${data.accounts.length} accounts, ${data.rosterItems} roster items`);

    const termsFile = join(dir, 'ejabberd-terms.txt');
    const kinds: ServerKind[] = [];
    if (wanted.includes('shoal')) kinds.push(shoal(repoRoot, built, shoalMalloc));
    if (wanted.includes('prosody') && !stillMissing.includes('prosody')) kinds.push(prosody());
    if (wanted.includes('ejabberd') && !stillMissing.includes('ejabberd')) kinds.push(ejabberd(() => termsFile));

    const twoCores = cpus().length >= 2 && has('taskset');
    const serverLaunch: Launch = { nofile, cpus: twoCores ? '0' : undefined };
    const genLaunch: Launch = { nofile, cpus: twoCores ? '1' : undefined };
    const results: Results = { scenarios: list.map((s) => s.name), servers: {}, errors: {} };

    const ports = new Map<ServerKind, number>();
    const httpPorts = new Map<ServerKind, { c2s: number; http: number }>();
    for (const kind of kinds) {
      const sdir = join(dir, kind.key);
      const port = await freePort();
      ports.set(kind, port);
      const httpPort = await freePort();
      httpPorts.set(kind, { c2s: port, http: httpPort });
      const tp = Date.now();
      await kind.prepare(sdir, tls, port, httpPort);
      if (kind.key === 'shoal') await provisionShoal(data, join(sdir, 'data', 'shoal.sqlite'));
      if (kind.key === 'prosody') provisionProsody(data, join(sdir, 'data'));
      if (kind.key === 'ejabberd') ejabberdTerms(data, termsFile);
      log(`${kind.name} ${kind.version()}: provisioned in ${((Date.now() - tp) / 1000).toFixed(1)} s, port ${port}`);
      results.servers[kind.key] = { name: kind.name, version: kind.version(), reports: {}, cpu: {} };
    }

    // Scenario by scenario, the servers one after another: a slow drift in what else the machine
    // is doing then touches every server's figures for a scenario alike. The login scenario runs
    // --login-repeat times, the servers interleaved and their order turned each time, because
    // this machine's speed drifts by tens of percent within minutes (bench/RESULTS.md).
    const loginRepeat = Math.max(1, Math.round(Number(v['login-repeat'] ?? 3)));
    type Run = { report: ScenarioReport; cpu: CpuShare };
    // One run of a scenario on one server: a fresh server process, so each memory baseline is a cold start.
    const runOnce = async (kind: ServerKind, sc: Scenario, which: string): Promise<Run | undefined> => {
      const port = ports.get(kind)!;
      try {
        const genArgs = (pid: number): string[] => ['--port', String(port), '--domain', 'localhost', '--server-pid', String(pid), '--scram-cache', cacheFile, ...sc.args];
        const run = await measure(kind, sc, serverLaunch, (pid) => runGenerator(genArgs(pid), genLaunch, sc.timeoutMs, log), log);
        // A server that resumed nothing gets its figures as '—' and the reasons under Errors.
        if (run.report.resume && run.report.resume.resumed === 0) results.errors[`${kind.key}/${sc.name}`] = `no session resumed: ${JSON.stringify(run.report.resume.failures)}`;
        log(`${kind.name} / ${which}: ${summary(sc.name, run.report)}`);
        return run;
      } catch (err) {
        results.errors[`${kind.key}/${which}`] = (err as Error).message;
        log(`${kind.name} / ${which}: FAILED: ${(err as Error).message}`);
        return undefined;
      }
    };
    for (const sc of list) {
      const repeat = sc.name === 'login' ? loginRepeat : 1;
      const runs = new Map<ServerKind, Run[]>(kinds.map((k) => [k, []]));
      for (let round = 0; round < repeat; round++) {
        const which = repeat > 1 ? `${sc.name} (run ${round + 1} of ${repeat})` : sc.name;
        // Round r starts with the r-th server: S P E, then P E S, then E S P.
        for (const kind of [...kinds.slice(round % kinds.length), ...kinds.slice(0, round % kinds.length)]) {
          const run = await runOnce(kind, sc, which);
          if (run) runs.get(kind)!.push(run);
        }
      }
      for (const [kind, done] of runs) {
        if (done.length === 0) continue;
        const server = results.servers[kind.key]!;
        const median = medianRun(done.map((r) => r.report));
        const shown = done.find((d) => d.report === median)!;
        server.reports[sc.name] = shown.report;
        server.cpu[sc.name] = shown.cpu;
        if (repeat > 1) (server.repeats ??= {})[sc.name] = done.map((d) => d.report);
      }
    }

    // --- The room (MUC) and WebSocket scenarios (room-ws-run.ts) ---
    const extraResults: ExtraResults | undefined =
      extras.length > 0 ? await runExtras({ plans: extras, kinds, ports: httpPorts, serverLaunch, genLaunch, cacheFile, log }) : undefined;
    if (extraResults) Object.assign(results.errors, extraResults.errors);

    // --- CPU profile of Shoal in its hottest scenario (a separate run: profiling slows it) ---
    let profileText = '';
    const shoalResults = results.servers.shoal;
    if (v.profile !== 'none' && shoalResults && Object.keys(shoalResults.reports).length > 0) {
      const pick =
        v.profile === 'auto'
          ? list
              .map((s) => ({ s, cpu: cpuOf(shoalResults.reports[s.name]) }))
              .sort((a, b) => b.cpu - a.cpu)[0]?.s
          : list.find((s) => s.name === v.profile);
      if (pick) {
        const profDir = join(dir, 'profile');
        mkdirSync(profDir, { recursive: true });
        const kind = kinds.find((k) => k.key === 'shoal')!;
        let server;
        try {
          server = await kind.start({ ...serverLaunch, cpuProfileDir: profDir, streamManagement: pick.sm, mam: pick.mam });
          log(`profiling Shoal in the ${pick.name} scenario`);
          await runGenerator(['--port', String(server.port), '--domain', 'localhost', '--scram-cache', cacheFile, ...pick.args], genLaunch, pick.timeoutMs, log);
        } catch (err) {
          log(`profiling failed: ${(err as Error).message}`);
        } finally {
          await server?.stop();
        }
        const prof = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
        if (prof) {
          profileText = `CPU profile of Shoal (\`node --cpu-prof\`) in the \`${pick.name}\` scenario, a separate run after the measured ones:\n\n${summarizeProfile(join(profDir, prof), repoRoot)}`;
          if (v.keep) log(`profile kept at ${join(profDir, prof)}`);
        } else log('no CPU profile was written');
      }
    }

    // --- Results ---
    const table = buildTable(results);
    const elapsed = (Date.now() - t0) / 1000;
    const chartFile = outFile.replace(/\.md$/, '') + '.png';
    const chartOk = has('gnuplot') && drawChart(results, chartFile, dir);
    process.stdout.write(`\n${table}\n`);
    const checks = failedChecks(results);
    if (extraResults) checks.push(...extraFailedChecks(extraResults));
    for (const c of checks) log(`CHECK FAILED (must be 0): ${c}`);
    const extraMd = extraResults ? extrasMarkdown(extraResults) : '';
    if (extraMd) process.stdout.write(`\n${extraMd}\n`);
    const tgt = targets(results);
    const repeated = repeatsTable(results);
    process.stdout.write(`\n${tgt}\n`);
    const archiving = archivingTable(results);
    if (archiving) process.stdout.write(`\nThe cost of archiving (chat with MAM off and on):\n\n${archiving}\n`);
    const m = {
      ...machine(),
      erlang: `OTP ${commandOutput('erl', ['-noshell', '-eval', 'io:format("~s", [erlang:system_info(otp_release)]), halt().'])}`,
      lua: commandOutput('lua5.4', ['-v']).split('\n')[0] ?? '',
    };
    const cmdline = `npm run bench:compare${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}`;
    const md = [
      '# Shoal, Prosody and ejabberd side by side',
      '',
      `Generated by \`${cmdline}\` on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC in ${(elapsed / 60).toFixed(1)} minutes. Regenerate it with the same command (see bench/README.md).`,
      '',
      '## Machine and versions',
      '',
      `- Machine: ${m.cpu}, ${m.memory}; ${m.os}`,
      ...Object.entries(results.servers).map(([, s]) => `- ${s.name}: ${s.version}`),
      `- Node.js ${m.node} (Shoal and the load generator), ${m.erlang} (ejabberd), ${m.lua} (Prosody), ${m.openssl}`,
      `- Load average (1 min) before the run ${loadBefore.toFixed(2)}, after ${loadavg()[0]!.toFixed(2)}: the load generator's own share is in the last table; anything else running meanwhile skews the figures.`,
      `- Pinning: ${twoCores ? 'each server on CPU 0, the load generator on CPU 1 (taskset)' : 'none (fewer than 2 CPUs or no taskset)'}; open-file limit ${nofile} for both (prlimit)`,
      '',
      '## Settings (the same for every server)',
      '',
      '- Loopback only (127.0.0.1), a private instance of each server with its own config and data in a temp dir (no system service, no system port).',
      '- STARTTLS required, one ECDSA P-256 self-signed certificate for all; TLS as negotiated by default (TLS 1.3 here).',
      '- SCRAM-SHA-1 with hashed credentials (StoredKey/ServerKey, 4096 iterations), byte-identical salts and keys on all servers; the client caches its keys (RFC 5802 §5.1), so a login costs the server what it costs in production.',
      '- Same accounts and rosters: user1..N (empty rosters); ruser1..R each with contacts = the other roster users + rcontact accounts, all subscription both.',
      '- Modules: roster, disco, ping; no offline storage, no message archive (Shoal: `mam: { enabled: false }`) but in chat-mam, no s2s, no rate limits (ejabberd listener without shaper); logs at warn.',
      "- chat-mam: the chat load with every message archived (XEP-0313) in the storage each server keeps its other data in: Shoal's mam module (`mam: { enabled: true, default: always }`, SQLite), Prosody's mod_mam (`default_archive_policy = true`, `archive_expires_after = \"never\"`, internal storage), ejabberd's mod_mam (`default: always`, Mnesia). The archived copies are counted in each server's storage before and after the run (server stopped): they must be 2 × messages sent (sender's and recipient's archive), and 0 in the plain chat scenario.",
      "- Stream management (XEP-0198) only in the resume scenario, resumable for 300 s: Shoal's own (`stream_management`, off otherwise), Prosody's mod_smacks (`smacks_hibernation_time`), ejabberd's mod_stream_mgmt (`resume_timeout`), other settings at their defaults.",
      '- Resume: suser1..2N in pairs of mutual contacts (both). Everyone logs in with stream management; the first of each pair acknowledges what it has, then all of them lose their connections at once (TCP reset); each partner sends its contact K messages and a ping, and once all pings are answered the N clients reconnect (200 at a time) with STARTTLS, SCRAM-SHA-1 and `<resume/>`, then a ping. Wall time and server CPU from the first reconnect to the last ping answer; each resumed client counts the messages retransmitted to it (lost = sent − received, duplicates).',
      '- Every client does the seed\'s full login: STARTTLS, SCRAM-SHA-1, bind, session, roster get, initial presence; it counts as online when the server has answered a ping sent right after the presence (RFC 6120 §10.1 in-order processing).',
      `- Warm-up in the login scenario: before the measured logins, the generator logs as many other accounts in and out again (user N+1..2N, same concurrency), ${warmupRounds(v)} times over (\`--login-warmup-rounds\`), unmeasured, on every server alike. A server's first logins after start also pay for compiling its hot code (V8's optimizing compiler for Shoal, still busy in the second round: bench/RESULTS.md, "Steady state"); the measured figures are those of a server that has been up a while. The first round's server CPU is the row "server CPU s per 1,000 logins, first logins after start", the last round's the row "..., last warm-up round" (\`--login-warmup 0\` measures a cold server instead). The ws scenario does the same over WebSocket, one round (\`--ws-warmup\`).`,
      ...(loginRepeat > 1 && list.some((s) => s.name === 'login')
        ? [`- The login scenario ran ${loginRepeat} times on every server (\`--login-repeat\`), the servers interleaved and their order turned each time, each run on a fresh server process: the targets tables take the median of each figure over the runs, the side-by-side table shows each server's median run by CPU per login, and "Every run of the repeated scenarios" lists them all.`]
        : []),
      `- Memory allocator: ${shoalMalloc ? `Shoal with \`${basename(shoalMalloc)}\` preloaded (\`--shoal-malloc\`, LD_PRELOAD), the others with their defaults` : "each server's default (glibc malloc for Shoal and Prosody)"}.`,
      '- A fresh server process for every scenario. Memory is VmRSS of the server process; CPU is utime+stime from /proc/<pid>/stat (ejabberd: the beam.smp VM).',
      '',
      '## Results',
      '',
      `Ratios are Shoal/Prosody and Shoal/ejabberd; the arrow says which direction is better for Shoal. ${scale !== 1 ? `Counts scaled by ${scale}.` : ''}`,
      '',
      table,
      '',
      ...(checks.length > 0 ? ['**Correctness checks that failed (each must be 0):**', '', ...checks.map((c) => `- ${c}`), ''] : []),
      chartOk ? `![Shoal's advantage factor per metric](${chartFile.split('/').pop()})\n` : '',
      ...(extraMd ? ['## Room and WebSocket scenarios', '', extraMd] : []),
      '## Targets (issue 5)',
      '',
      tgt,
      '',
      '## Targets (issue 15: capacity)',
      '',
      ...(repeated
        ? [`Each figure of a scenario that ran several times is the median of its runs (the next table); the side-by-side table above shows each server's median run by CPU per login.`, '']
        : []),
      capacityTargets(results),
      '',
      ...(repeated ? ['### Every run of the repeated scenarios', '', "The servers ran interleaved, in a different order each time; '(median)' marks the run shown in the side-by-side table.", '', repeated, ''] : []),
      ...(archiving
        ? [
            '## The cost of archiving (MAM)',
            '',
            'The chat load with archiving off (`chat`) and on (`chat-mam`); "archived copies" is what each server\'s storage gained during the run (2 × sent when on, 0 when off).',
            '',
            archiving,
            '',
          ]
        : []),
      ...(profileText ? ['## Where Shoal spends its CPU', '', profileText, ''] : []),
      ...(Object.keys(results.errors).length > 0 ? ['## Errors', '', ...Object.entries(results.errors).map(([k, e]) => `- ${k}: ${e.split('\n')[0]}`), ''] : []),
      '## Load generator and the rest of the machine',
      '',
      "The generator is pinned to its own core; near 100% of it during a phase would mean it set the pace. The last columns split the machine's CPU time while the scenario ran (2 cores: at most twice the wall time): the server, the generator, interrupts and softirqs (mostly the kernel's loopback TCP work, charged to no process), and other processes: large values there mean the figures were disturbed.",
      '',
      generatorTable(results),
      '',
      '<details><summary>Raw reports (JSON)</summary>',
      '',
      '```json',
      JSON.stringify(extraResults ? { ...results, extras: extraResults } : results, null, 1),
      '```',
      '',
      '</details>',
      '',
    ].join('\n');
    writeFileSync(outFile, md);
    log(`wrote ${outFile}${chartOk ? ` and ${chartFile}` : ''}; total ${(elapsed / 60).toFixed(1)} min`);
    return Object.keys(results.errors).length > 0 ? 1 : 0;
  } finally {
    cleanup();
  }
}

/** Stops every process this run started, with their descendants (the Erlang VM runs below erl). */
function killAll(): void {
  for (const c of children) {
    if (c.pid === undefined) continue;
    for (const pid of processTree(c.pid).reverse()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

function cpuOf(r: LoadReport | undefined): number {
  if (!r?.server) return 0;
  return r.server.cpuLoginS + r.server.cpuPresenceS + r.server.cpuMessagesS + r.server.cpuResumeS;
}

function summary(name: ScenarioName, r: ScenarioReport): string {
  const s = r.server;
  const base = `${r.login.succeeded}/${r.clients} online in ${(r.login.elapsedMs / 1000).toFixed(1)} s (${r.login.sustainedPerSecond}/s sustained)`;
  const fails = r.login.failed > 0 ? `, ${r.login.failed} FAILED (${Object.keys(r.login.failures).slice(0, 2).join('; ')})` : '';
  const archived = r.archive ? `, ${r.archive.archived} archived copies (${r.archive.expected} expected)` : '';
  if ((name === 'chat' || name === 'chat-mam') && r.messages) return `${base}${fails}; ${r.messages.received}/${r.messages.requested} msgs, ${r.messages.perSecond}/s, p99 ${r.messages.latencyMs.p99} ms${archived}`;
  if (name === 'idle' && s) return `${base}${fails}; ${s.rssPerClientKiB} KiB per connection`;
  if (name === 'roster') return `${base}${fails}; fan-out ${r.presence.complete ? 'complete' : 'INCOMPLETE'} after ${r.presence.elapsedMs} ms`;
  if (name === 'resume' && r.resume) {
    const m = r.resume;
    const why = m.failed > 0 ? ` (${Object.keys(m.failures).slice(0, 2).join('; ')})` : '';
    return `${base}${fails}; ${m.resumed}/${m.dropped} resumed${why} in ${(m.elapsedMs / 1000).toFixed(2)} s (${m.perSecond}/s), messages ${m.received}/${m.expected}, lost ${m.lost}, duplicated ${m.duplicates}, ${s?.cpuPer1000Resumes ?? '?'} CPU s / 1000 resumes`;
  }
  const last = r.warmup?.lastRoundCpuPer1000Logins === undefined ? '' : `, round ${r.warmup.rounds}: ${r.warmup.lastRoundCpuPer1000Logins}`;
  const warm = r.warmup ? ` (warm-up: ${r.warmup.succeeded}/${r.warmup.clients}, ${r.warmup.cpuPer1000Logins} CPU s / 1000 logins${last})` : '';
  return `${base}${fails}; ${s?.cpuPer1000Logins ?? '?'} CPU s / 1000 logins${warm}`;
}


function generatorTable(results: Results): string {
  const rows = [
    '| server | scenario | generator CPU during login (% of a core) | during messages | during resume | generator max RSS (MiB) | wall (s) | CPU s: server | generator | kernel (irq) | other processes |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const s of Object.values(results.servers)) {
    for (const [name, r] of Object.entries(s.reports)) {
      const c = s.cpu[name as ScenarioName];
      rows.push(
        `| ${s.name} | ${name} | ${r.generator.loginCpuPercent} | ${r.messages ? r.generator.messagesCpuPercent : '—'} | ${r.resume ? r.generator.resumeCpuPercent : '—'} | ${r.generator.maxRssMiB} | ` +
          `${c ? `${c.wallS} | ${c.serverS} | ${c.generatorS} | ${c.kernelS} | ${c.otherS}` : '— | — | — | — | —'} |`,
      );
    }
  }
  return rows.join('\n');
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    killAll();
    process.exit(1);
  },
);
