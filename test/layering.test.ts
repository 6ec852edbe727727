// The layer rule (.dependency-cruiser.cjs, run by `npm run lint:layers` in
// `npm test`) must catch a wrong import: here a small tree with the project's
// own rule file gets one deliberate violation of each kind, and the checker must
// name each one; the same tree without them must pass.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');
const CRUISE = join(ROOT, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');

function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-layers-'));
  copyFileSync(join(ROOT, '.dependency-cruiser.cjs'), join(dir, '.dependency-cruiser.cjs'));
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true }, include: ['src'] }));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

function cruise(dir: string): { status: number | null; output: string } {
  const r = spawnSync(process.execPath, [CRUISE, 'src', '--config', '.dependency-cruiser.cjs'], { cwd: dir, encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

const CLEAN: Record<string, string> = {
  'src/xml/element.ts': 'export class Element {}\n',
  'src/core/errors.ts': "import { Element } from '../xml/element.js';\nexport const e = Element;\n",
  'src/stream/framing.ts': "import { e } from '../core/errors.js';\nexport const f = e;\n",
  'src/router/local.ts': "import { e } from '../core/errors.js';\nexport const r = e;\n",
  'src/modules/roster/api.ts': 'export interface RosterApi { x: number }\n',
  'src/modules/roster/roster.ts': "import type { RosterApi } from './api.js';\nexport const roster: RosterApi = { x: 1 };\n",
  'src/modules/presence/presence.ts': "import type { RosterApi } from '../roster/api.js';\nimport { f } from '../../stream/framing.js';\nexport const p = (r: RosterApi) => [r, f];\n",
};

test('the layer rule passes a tree that only looks down', () => {
  const dir = tree(CLEAN);
  try {
    const r = cruise(dir);
    assert.equal(r.status, 0, r.output);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a wrong import fails the layer rule: xml/ from stream/, a service from another, a module into another', () => {
  const dir = tree({
    ...CLEAN,
    // xml/ is the bottom layer.
    'src/xml/parser.ts': "import { f } from '../stream/framing.js';\nexport const p = f;\n",
    // stream/ and router/ are siblings.
    'src/stream/c2s.ts': "import { r } from '../router/local.js';\nexport const c = r;\n",
    // presence may use roster only through roster/api.ts.
    'src/modules/presence/bad.ts': "import { roster } from '../roster/roster.js';\nexport const b = roster;\n",
  });
  try {
    const r = cruise(dir);
    assert.notEqual(r.status, 0, 'the checker must fail');
    assert.match(r.output, /bottom-xml: src\/xml\/parser\.ts → src\/stream\/framing\.ts/);
    assert.match(r.output, /stream-looks-down: src\/stream\/c2s\.ts → src\/router\/local\.ts/);
    assert.match(r.output, /modules-through-api: src\/modules\/presence\/bad\.ts → src\/modules\/roster\/roster\.ts/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
