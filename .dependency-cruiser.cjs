// The layer rule of src/, checked by `npm test` (npm run lint:layers): a file
// only imports from its own layer's folder or from layers below it.
//
//   5  cli/
//   4  server.ts                                   (composition root)
//   3  modules/                                    (one folder per feature)
//   2  stream/  sasl/  auth/  router/  storage/    (never each other)
//   1  core/                                       (types everything shares; the hub)
//   0  xml/  jid/  config/  log/  version.ts       (each on its own)
//
// A module reaches another only through that module's public api.ts.
// Tests (*.test.ts) and test helpers (testing.ts, testutil.ts) may import anything.
/** @type {import('dependency-cruiser').IConfiguration} */

const TESTS = '(\\.test\\.ts$|/testing\\.ts$|/testutil\\.ts$)';
const BOTTOM = ['xml', 'jid', 'config', 'log'];
const SERVICES = ['stream', 'sasl', 'auth', 'router', 'storage'];

/** A rule that files under `from` import nothing under src/ but what `allowed` matches. */
function only(name, from, allowed, comment) {
  return {
    name,
    comment,
    severity: 'error',
    from: { path: from, pathNot: TESTS },
    to: { path: '^src/', pathNot: allowed },
  };
}

const below = (...folders) => folders.map((f) => `^src/${f}/`).join('|');

module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      comment: 'Files must not import each other in a circle.',
      severity: 'error',
      from: { path: '^src/', pathNot: TESTS },
      to: { circular: true },
    },
    ...BOTTOM.map((f) =>
      only(`bottom-${f}`, `^src/${f}/`, `^src/${f}/`, `src/${f}/ is a bottom layer: it imports nothing else from src/.`),
    ),
    only('bottom-version', '^src/version\\.ts$', '^src/version\\.ts$', 'src/version.ts imports nothing from src/.'),
    only('core-looks-down', '^src/core/', `${below('core', ...BOTTOM)}|^src/version\\.ts$`, 'core/ imports only the bottom layer.'),
    ...SERVICES.map((f) =>
      only(
        `${f}-looks-down`,
        `^src/${f}/`,
        `${below(f, 'core', ...BOTTOM)}|^src/version\\.ts$`,
        `${f}/ imports core/ and the bottom layer, never another service folder (${SERVICES.join(', ')}).`,
      ),
    ),
    only(
      'modules-look-down',
      '^src/modules/',
      `${below('modules', 'core', ...SERVICES, ...BOTTOM)}|^src/version\\.ts$`,
      'modules/ imports the layers below it, never server.ts or cli/.',
    ),
    {
      name: 'modules-through-api',
      comment: 'A module uses another only through its public api.ts (and names it in depends).',
      severity: 'error',
      from: { path: '^src/modules/([^/]+)/', pathNot: TESTS },
      to: { path: '^src/modules/([^/]+)/', pathNot: ['^src/modules/$1/', '^src/modules/[^/]+/api\\.ts$'] },
    },
    {
      name: 'nothing-imports-cli',
      comment: 'cli/ is the top layer.',
      severity: 'error',
      from: { path: '^src/', pathNot: `^src/cli/|${TESTS}` },
      to: { path: '^src/cli/' },
    },
    {
      name: 'only-cli-imports-server',
      comment: 'server.ts is the composition root: only cli/ (and tests) start it.',
      severity: 'error',
      from: { path: '^src/', pathNot: `^src/cli/|^src/server\\.ts$|${TESTS}` },
      to: { path: '^src/server\\.ts$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    moduleSystems: ['es6'],
  },
};
