// Proves the Nx module-boundary rule in eslint.config.mjs bites: the same import text is linted as if
// it lived in different projects (the file paths need not exist; Nx maps a path to a project by its root).
//   in:  eslint.config.mjs, the project.json tags, the Nx project graph (computed offline by the config)
//   out: node:test results
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { describe, it, before } from 'node:test';
import { fileURLToPath } from 'node:url';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(repoRoot); // Nx finds its workspace from the cwd.

const RULE = '@nx/enforce-module-boundaries';
let eslint;

before(async () => {
  const { ESLint } = await import('eslint');
  eslint = new ESLint({ cwd: repoRoot });
});

/** Lints `code` as if it were `relPath`; returns the boundary-rule messages (fails on parse errors). */
async function boundaryMessages(relPath, code) {
  const [result] = await eslint.lintText(code, { filePath: join(repoRoot, relPath) });
  const fatal = result.messages.filter((m) => m.fatal);
  assert.deepEqual(fatal, [], `parse errors in ${relPath}`);
  return result.messages.filter((m) => m.ruleId === RULE);
}

const cases = {
  bullmq: "import { Queue } from 'bullmq';\nexport const q = Queue;\n",
  ioredis: "import Redis from 'ioredis';\nexport const r = Redis;\n",
  nest: "import { Injectable } from '@nestjs/common';\nexport const i = Injectable;\n",
  grpc: "import { Server } from '@grpc/grpc-js';\nexport const s = Server;\n",
  engine: "import * as engine from '@kcache-serve/kcache';\nexport const e = engine;\n",
  contracts: "import * as proto from '@kcache-serve/proto';\nexport const p = proto;\n",
  worker: "import * as worker from '@kcache-serve/worker';\nexport const w = worker;\n",
  gateway: "import * as gateway from '@kcache-serve/gateway';\nexport const g = gateway;\n",
};

describe('module boundaries (scope:engine)', () => {
  const file = 'libs/kcache/src/__lint_fixture__/forbidden-import.ts';

  for (const name of ['bullmq', 'ioredis', 'nest', 'grpc']) {
    it(`rejects ${name} imports in libs/kcache`, async () => {
      const messages = await boundaryMessages(file, cases[name]);
      assert.equal(messages.length, 1, JSON.stringify(messages));
      assert.equal(messages[0].severity, 2);
      assert.match(messages[0].message, /scope:engine" is not allowed to import/);
    });
  }

  it('rejects engine -> app and engine -> contracts imports', async () => {
    for (const name of ['gateway', 'contracts']) {
      const messages = await boundaryMessages(file, cases[name]);
      assert.equal(messages.length, 1, `${name}: ${JSON.stringify(messages)}`);
      assert.equal(messages[0].severity, 2);
    }
  });
});

describe('module boundaries (scope:contracts)', () => {
  it('allows the engine, rejects apps', async () => {
    const file = 'libs/proto/src/__lint_fixture__.ts';
    assert.deepEqual(await boundaryMessages(file, cases.engine), []);
    assert.equal((await boundaryMessages(file, cases.worker)).length, 1);
  });
});

describe('module boundaries (scope:app)', () => {
  it('allows bullmq, ioredis, NestJS, gRPC and the libs in apps/worker', async () => {
    const file = 'apps/worker/src/__lint_fixture__.ts';
    for (const name of ['bullmq', 'ioredis', 'nest', 'grpc', 'engine', 'contracts']) {
      assert.deepEqual(await boundaryMessages(file, cases[name]), [], name);
    }
  });

  it('rejects one app importing another', async () => {
    const messages = await boundaryMessages('apps/gateway/src/__lint_fixture__.ts', cases.worker);
    assert.equal(messages.length, 1, JSON.stringify(messages));
    assert.equal(messages[0].severity, 2);
  });
});

describe('module boundaries (scope:bench)', () => {
  it('allows the engine, rejects apps', async () => {
    const file = 'libs/kcache-bench/src/__lint_fixture__.ts';
    assert.deepEqual(await boundaryMessages(file, cases.engine), []);
    assert.equal((await boundaryMessages(file, cases.gateway)).length, 1);
  });
});

/** Lints `code` as if it were `relPath`; returns the folder-layer messages (no-restricted-imports). */
async function layerMessages(relPath, code) {
  const [result] = await eslint.lintText(code, { filePath: join(repoRoot, relPath) });
  return result.messages.filter((m) => m.ruleId === 'no-restricted-imports');
}

describe('folder layers (no import runs back up)', () => {
  const importOf = (path) => `import * as m from '${path}';\nexport const x = m;\n`;

  it('libs/kcache/src: a lower folder may not import a higher one, nor testing/; a higher one may import a lower one', async () => {
    for (const [file, path] of [
      ['libs/kcache/src/model/__lint_fixture__.ts', '../engine/llm-engine'],
      ['libs/kcache/src/memory/__lint_fixture__.ts', '../runtime/model-runner'],
      ['libs/kcache/src/engine/__lint_fixture__.ts', '../testing/reference-data'],
      ['libs/kcache/src/host-tier/__lint_fixture__.ts', '../engine/create-engine'],
      ['libs/kcache/src/ort-native/__lint_fixture__.ts', '../runtime/graph-session'],
      ['libs/kcache/src/runtime/backend/__lint_fixture__.ts', '../../engine/llm-engine'],
    ]) {
      const messages = await layerMessages(file, importOf(path));
      assert.equal(messages.length, 1, `${file} importing ${path}: ${JSON.stringify(messages)}`);
      assert.equal(messages[0].severity, 2);
    }
    assert.deepEqual(await layerMessages('libs/kcache/src/engine/__lint_fixture__.ts', importOf('../runtime/model-runner')), []);
    assert.deepEqual(await layerMessages('libs/kcache/src/runtime/backend/__lint_fixture__.ts', importOf('../../ort-native/native-ort')), []);
    assert.deepEqual(await layerMessages('libs/kcache/src/engine/__lint_fixture__.test.ts', importOf('../testing/reference-data')), [], 'tests may import testing/');
  });

  it('apps/gateway/src: generation/ may not import a transport (grpc/, completions/); a transport may import generation/', async () => {
    for (const path of ['../grpc/public-grpc.server', '../completions/completions.module']) {
      const messages = await layerMessages('apps/gateway/src/generation/__lint_fixture__.ts', importOf(path));
      assert.equal(messages.length, 1, `${path}: ${JSON.stringify(messages)}`);
    }
    assert.deepEqual(await layerMessages('apps/gateway/src/grpc/__lint_fixture__.ts', importOf('../generation/generation.service')), []);
  });

  it('apps/gateway/src takes the light entry point of the engine library, never the engine (the soak command may)', async () => {
    assert.equal((await layerMessages('apps/gateway/src/generation/__lint_fixture__.ts', importOf('@kcache-serve/kcache'))).length, 1);
    assert.equal((await layerMessages('apps/gateway/src/grpc/__lint_fixture__.ts', importOf('@kcache-serve/kcache'))).length, 1);
    assert.deepEqual(await layerMessages('apps/gateway/src/generation/__lint_fixture__.ts', importOf('@kcache-serve/kcache/light')), []);
    assert.deepEqual(await layerMessages('apps/gateway/src/soak/__lint_fixture__.ts', importOf('@kcache-serve/kcache')), []);
  });
});
