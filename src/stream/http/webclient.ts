// The web client served at / (http.web_client): Converse.js, from the files of
// its npm package (no request to any other site), configured for this server's
// WebSocket endpoint, with BOSH configured too. Converse 14 is an ES-module
// build: the page loads it with <script type="module"> and its chunks load
// relative to it, from /converse/.
import { createReadStream, realpathSync, statSync } from 'node:fs';
import { dirname, extname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type http from 'node:http';
import { BOSH_PATH_NAME, WEBSOCKET_PATH_NAME } from './paths.js';

/** Where the page loads Converse's files from. */
export const CONVERSE_PREFIX = '/converse/';

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.mp3': 'audio/mpeg',
  '.ogg': 'audio/ogg',
};

/** The directory of Converse's built files, or undefined when the package is not installed. */
export function converseDist(): string | undefined {
  try {
    return realpathSync(dirname(fileURLToPath(import.meta.resolve('converse.js/dist/converse.min.js'))));
  } catch {
    return undefined;
  }
}

export interface WebClientPage {
  /** The domain users log in to when they type a bare username. */
  defaultDomain: string;
}

/** The page at /. */
export function indexHtml(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Shoal</title>
<link rel="stylesheet" href="${CONVERSE_PREFIX}converse.min.css">
<script src="/converse-pre.js"></script>
<script type="module" src="/converse-init.js"></script>
</head>
<body class="converse-fullscreen">
<noscript>This chat needs JavaScript.</noscript>
</body>
</html>
`;
}

/**
 * Runs before Converse (a classic script runs before module scripts). Converse's full-screen
 * footer shows its sponsors' logos from conversejs.org; the page must not make requests to
 * another site, and Converse skips any element already defined, so the footer is defined here
 * first, with a text-only credit.
 */
export function preScript(): string {
  return `customElements.define('converse-footer', class extends HTMLElement {
  connectedCallback() {
    const p = document.createElement('p');
    p.className = 'brand-subtitle subdued text-center py-3';
    p.textContent = 'Converse.js (open source, MPL 2.0), served by Shoal';
    this.replaceChildren(p);
  }
});
`;
}

/** The module that starts Converse with this server's endpoints (the page's own origin). */
export function initScript(page: WebClientPage): string {
  const domain = JSON.stringify(page.defaultDomain);
  return `import converse from '${CONVERSE_PREFIX}converse.min.js';
const ws = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '${WEBSOCKET_PATH_NAME}';
converse.initialize({
  assets_path: '${CONVERSE_PREFIX}',
  websocket_url: ws,
  bosh_service_url: location.origin + '${BOSH_PATH_NAME}',
  discover_connection_methods: false,
  view_mode: 'fullscreen',
  default_domain: ${domain},
  allow_registration: false,
  show_connection_url_input: false,
  auto_reconnect: true,
});
`;
}

/**
 * Serves one file of Converse's dist directory; false when `rel` names none (then the caller
 * answers 404). Never leaves the directory: the resolved path must stay inside it.
 */
export function serveConverseFile(dist: string, rel: string, req: http.IncomingMessage, res: http.ServerResponse): boolean {
  let decoded: string;
  try {
    decoded = decodeURIComponent(rel);
  } catch {
    return false;
  }
  if (decoded.includes('\0')) return false;
  const file = join(dist, decoded);
  if (!file.startsWith(dist + sep)) return false;
  let size: number;
  try {
    const st = statSync(file);
    if (!st.isFile()) return false;
    size = st.size;
  } catch {
    return false;
  }
  res.writeHead(200, {
    'Content-Type': TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream',
    'Content-Length': String(size),
    // The package version is fixed; a new one comes with a restart.
    'Cache-Control': 'public, max-age=3600',
    'X-Content-Type-Options': 'nosniff',
  });
  if (req.method === 'HEAD') {
    res.end();
    return true;
  }
  createReadStream(file)
    .on('error', () => res.destroy())
    .pipe(res);
  return true;
}
