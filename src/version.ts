// The name and version the server reports (XEP-0092, logs).
import { readFileSync } from 'node:fs';

export const SERVER_NAME = 'Shoal';
export const SERVER_VERSION: string = (() => {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
    if (pkg.version) return pkg.version;
  } catch {
    // Both src/ and dist/ sit one level below package.json; fall through if moved.
  }
  return '0.0.0';
})();
