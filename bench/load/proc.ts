// Resource use of a process by pid, read from Linux's /proc (proc(5)):
// resident memory from /proc/<pid>/status (VmRSS) and CPU time from
// /proc/<pid>/stat (utime + stime, all threads included).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

let clockTicks: number | undefined;

/** sysconf(_SC_CLK_TCK): the unit of utime/stime; 100 on every common Linux. */
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

export interface ProcSample {
  /** Resident set size in KiB. */
  rssKiB: number;
  /** User + system CPU seconds since the process started. */
  cpuSeconds: number;
  /** When the sample was taken (performance.now(), ms). */
  at: number;
}

export function sampleProcess(pid: number): ProcSample {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return { rssKiB: rss ? Number(rss[1]) : 0, cpuSeconds: statCpuSeconds(`/proc/${pid}/stat`), at: performance.now() };
}

/**
 * User + system CPU seconds in a proc(5) stat file: a process's (`/proc/<pid>/stat`) or one
 * thread's (`/proc/thread-self/stat`, `/proc/<pid>/task/<tid>/stat`).
 */
export function statCpuSeconds(path: string): number {
  const stat = readFileSync(path, 'utf8');
  // The command name (field 2) may contain spaces and parentheses: fields are counted after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // proc(5): utime and stime are fields 14 and 15, i.e. 11 and 12 after the state field (3).
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond();
}

/** Waits until process `pid` used less than `share` of a core over `windowMs` (or `timeoutMs` passed). */
export async function quiet(pid: number, windowMs: number, share: number, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let last = sampleProcess(pid);
  while (performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, windowMs));
    const now = sampleProcess(pid);
    const used = (now.cpuSeconds - last.cpuSeconds) / ((now.at - last.at) / 1000);
    if (used < share) return;
    last = now;
  }
}

/** The pid and its descendants (e.g. a wrapper script and the server it started). */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const e of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(e));
      children.set(ppid, list);
    } catch {
      // The process ended while we were looking.
    }
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    out.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

/**
 * CPU seconds the whole machine spent busy (all cores, /proc/stat: everything but idle and
 * iowait), and the part of it spent in interrupts and softirqs, where the kernel does most of
 * the loopback TCP work that no process is charged for.
 */
export function machineBusySeconds(): { busy: number; interrupts: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  const t = ticksPerSecond();
  return { busy: (total - (v[3] ?? 0) - (v[4] ?? 0)) / t, interrupts: ((v[5] ?? 0) + (v[6] ?? 0)) / t };
}
