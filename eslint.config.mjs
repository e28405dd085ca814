// ESLint flat config for the whole workspace.
//
// The point of linting here is architecture, not style: `@nx/enforce-module-boundaries` checks the
// Nx tags in each project.json (scope:engine, scope:contracts, scope:app). Style rules are kept to a
// handful of warnings so that concurrent work is never blocked on a nit.
import { createProjectGraphAsync } from '@nx/devkit';
import nx from '@nx/eslint-plugin';
import tseslint from 'typescript-eslint';

// The boundary rule reads Nx's *cached* project graph and silently skips itself when there is none
// (fresh checkout, plain `eslint .`, the ESLint Node API). Inside an Nx task the graph is already
// fresh; everywhere else compute it once here so the rule always runs.
if (!process.env.NX_TASK_TARGET_PROJECT) {
  process.env.NX_DAEMON ??= 'false';
  try {
    await createProjectGraphAsync({ exitOnError: false });
  } catch (err) {
    console.warn('eslint.config.mjs: could not compute the Nx project graph; module boundaries are NOT checked.', err);
  }
}

/** Packages the engine must never import: it is transport- and framework-free (STYLE.md habit 12). */
const ENGINE_BANNED_IMPORTS = ['@nestjs/*', 'bullmq', 'ioredis', '@grpc/*'];

const moduleBoundaries = [
  'error',
  {
    allow: [],
    enforceBuildableLibDependency: false,
    depConstraints: [
      {
        sourceTag: 'scope:engine',
        onlyDependOnLibsWithTags: ['scope:engine'],
        bannedExternalImports: ENGINE_BANNED_IMPORTS,
      },
      {
        // Benchmarks and evaluation measure the engine; nothing in the engine imports them.
        sourceTag: 'scope:bench',
        onlyDependOnLibsWithTags: ['scope:engine', 'scope:bench'],
        bannedExternalImports: ENGINE_BANNED_IMPORTS,
      },
      {
        sourceTag: 'scope:contracts',
        onlyDependOnLibsWithTags: ['scope:engine', 'scope:contracts'],
      },
      {
        // Apps may use any lib, never another app.
        sourceTag: 'scope:app',
        notDependOnLibsWithTags: ['scope:app'],
      },
    ],
  },
];

/**
 * Folders of a project, bottom layer first. A file may import from its own layer and the layers below,
 * never from a layer above (no arrow runs back up); tests (*.test.ts) may reach any layer.
 *
 * libs/kcache/src: testing/ (test helpers) sits above all and only tests and benchmarks import it; the
 * entry points (index.ts, light.ts) sit above every folder.
 */
const ENGINE_LAYERS = [
  ['request', 'attention', 'model', 'ort-native'],
  ['sampling', 'tokenizer'],
  ['hf'],
  ['gguf'],
  ['formats', 'memory'],
  ['runtime', 'scheduler'],
  ['host-tier'],
  ['engine'],
  ['cli'],
  ['testing'],
];

/** apps/gateway/src: the transports (grpc/, completions/) over the generation service, over the core. */
const GATEWAY_LAYERS = [
  ['errors', 'metrics'],
  ['auth'],
  ['config'],
  ['limits', 'core'],
  ['generation'],
  ['grpc', 'completions', 'health', 'soak'],
];

/**
 * One config block per layer of `root`: its folders may not import the folders of a layer above, nor
 * the packages `bannedPaths` names (except in the folders of `pathsAllowedIn`).
 */
function layerRules(root, layers, { bannedPaths = [], pathsAllowedIn = [] } = {}) {
  return layers.flatMap((layer, i) => {
    const above = layers.slice(i + 1).flat();
    const patterns = above.length === 0 ? [] : [
      {
        // From a folder and from one nested in it (runtime/backend/).
        group: above.flatMap((folder) => [`../${folder}`, `../${folder}/*`, `../../${folder}`, `../../${folder}/*`]),
        message: `${root} is layered (eslint.config.mjs): ${layer.join(', ')} may not import a layer above it.`,
      },
    ];
    const block = (folders, paths) => ({
      files: folders.map((folder) => `${root}/${folder}/**/*.ts`),
      ignores: ['**/*.test.ts'],
      rules: { 'no-restricted-imports': ['error', { patterns, paths }] },
    });
    const banned = layer.filter((folder) => !pathsAllowedIn.includes(folder));
    const allowed = layer.filter((folder) => pathsAllowedIn.includes(folder));
    return [
      ...(banned.length > 0 && (patterns.length > 0 || bannedPaths.length > 0) ? [block(banned, bannedPaths)] : []),
      ...(allowed.length > 0 && patterns.length > 0 ? [block(allowed, [])] : []),
    ];
  });
}

/** The gateway runs no model: it takes the engine library's light entry point, which loads no onnxruntime. */
const GATEWAY_ENGINE_IMPORT = {
  name: '@kcache-serve/kcache',
  message: 'the gateway imports @kcache-serve/kcache/light (no onnxruntime); only the soak command may run an engine.',
};

export default [
  {
    ignores: [
      '**/node_modules/**',
      '**/dist/**',
      '**/*.d.ts',
      '.nx/**',
      '.scratch/**',
      '.cache/**',
      'coverage/**',
      'bench/results/**',
      'libs/proto/src/gen/**', // ts-proto output
    ],
  },
  {
    files: ['**/*.{ts,mts,cts,js,mjs,cjs}'],
    plugins: { '@nx': nx },
    linterOptions: { reportUnusedDisableDirectives: 'warn' },
    rules: {
      '@nx/enforce-module-boundaries': moduleBoundaries,
      'no-debugger': 'error',
      'no-dupe-keys': 'error',
      'no-unreachable': 'warn',
      'no-constant-condition': ['warn', { checkLoops: false }],
      eqeqeq: ['warn', 'smart'],
    },
  },
  {
    files: ['**/*.{ts,mts,cts}'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { ecmaVersion: 'latest', sourceType: 'module' },
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'warn',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
    },
  },
  {
    files: ['**/*.{js,cjs}'],
    languageOptions: { sourceType: 'commonjs', ecmaVersion: 'latest' },
  },
  {
    files: ['**/*.mjs'],
    languageOptions: { sourceType: 'module', ecmaVersion: 'latest' },
  },
  {
    // STYLE.md habit 5: the engine takes typed config; only the apps read the environment.
    files: ['libs/kcache/src/**/*.ts'],
    ignores: ['**/*.test.ts', 'libs/kcache/src/testing/**'],
    rules: {
      'no-restricted-properties': [
        'warn',
        { object: 'process', property: 'env', message: 'libs/kcache takes typed config; read process.env in the apps.' },
      ],
    },
  },
  ...layerRules('libs/kcache/src', ENGINE_LAYERS),
  ...layerRules('apps/gateway/src', GATEWAY_LAYERS, { bannedPaths: [GATEWAY_ENGINE_IMPORT], pathsAllowedIn: ['soak'] }),
  {
    // main.ts and app.module.ts: the gateway process itself.
    files: ['apps/gateway/src/*.ts'],
    rules: { 'no-restricted-imports': ['error', { paths: [GATEWAY_ENGINE_IMPORT] }] },
  },
];
