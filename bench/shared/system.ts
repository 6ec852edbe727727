// What the benchmark runners ask of the machine: whether a command exists,
// Debian packages they install when missing, the open-file limit they can give
// their processes, and a description of the machine for their result files.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';

export function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function pkgInstalled(pkg: string): boolean {
  const r = spawnSync('dpkg-query', ['-W', '-f', '${Status}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes('install ok installed');
}

/** apt-get install for whatever is missing; returns the packages still missing. */
export function ensurePackages(pkgs: string[], install: boolean, log: (line: string) => void): string[] {
  const missing = pkgs.filter((p) => !pkgInstalled(p));
  if (missing.length === 0 || !install) return missing;
  if (process.getuid?.() !== 0) {
    log(`missing ${missing.join(', ')} and not root: install them with apt-get install -y ${missing.join(' ')}`);
    return missing;
  }
  log(`installing ${missing.join(', ')} from Debian (apt-get)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  // A fresh machine has no package lists yet: update first when the plain install fails.
  if (spawnSync('apt-get', ['install', '-y', '-q', ...missing], { stdio: ['ignore', 'ignore', 'inherit'], env }).status !== 0) {
    spawnSync('apt-get', ['update', '-q'], { stdio: ['ignore', 'ignore', 'inherit'], env });
    spawnSync('apt-get', ['install', '-y', '-q', ...missing], { stdio: ['ignore', 'ignore', 'inherit'], env });
  }
  return missing.filter((p) => !pkgInstalled(p));
}

/**
 * The open-file limit for servers and the generator (10,000 clients need 10,000 sockets
 * on each side): at least 65536, or `need` when more, where prlimit may raise the hard limit
 * (root with CAP_SYS_RESOURCE; never above fs.nr_open, the kernel's bound), else the current
 * hard limit.
 */
export function nofileLimit(need = 0): number {
  let want = Math.max(65536, need);
  try {
    want = Math.min(want, Number(readFileSync('/proc/sys/fs/nr_open', 'utf8').trim()));
  } catch {
    // not Linux: try as asked
  }
  if (spawnSync('prlimit', [`--nofile=${want}:${want}`, 'true'], { stdio: 'ignore' }).status === 0) return want;
  const hard = Number(execFileSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim());
  return Number.isFinite(hard) ? hard : 4096;
}

/** How many local ports one source address can connect from (net.ipv4.ip_local_port_range). */
export function ephemeralPorts(): number {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (lo !== undefined && hi !== undefined && hi >= lo) return hi - lo + 1;
  } catch {
    // not Linux
  }
  return 28232;
}

/** A command's first line of output, or 'unknown'. */
export function commandOutput(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch {
    return 'unknown';
  }
}

/** CPU, memory, OS, Node.js and OpenSSL, for a results file. */
export function machine(): { cpu: string; memory: string; os: string; node: string; openssl: string } {
  const cpu = cpus()[0]?.model ?? 'unknown';
  let os = '';
  try {
    os = readFileSync('/etc/os-release', 'utf8').match(/^PRETTY_NAME="?([^"\n]*)/m)?.[1] ?? '';
  } catch {
    // not Linux
  }
  return {
    cpu: `${cpu}, ${cpus().length} cores`,
    memory: `${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    os: `${os}, Linux ${release()}`,
    node: process.version,
    openssl: commandOutput('openssl', ['version']),
  };
}

/** One ECDSA P-256 self-signed certificate for localhost in `dir` (openssl), as cert.pem and key.pem. */
export function makeCertificate(dir: string): { cert: string; key: string } {
  const files = { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') };
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', files.key, '-out', files.cert, '-days', '30', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost'], { stdio: 'ignore' });
  return files;
}
