// Static checks of deploy/docker/*.Dockerfile, since no Docker engine runs here:
// every COPY source from the build context exists and is not dropped by the Dockerfile's .dockerignore,
// every COPY --from=build source is something the build stage copied in or produced, and the runtime
// stage runs the app's package.json "main" as a non-root user with a HEALTHCHECK on the app's port.
//   in:  deploy/docker/*.Dockerfile (+ .dockerignore), the apps' package.json
//   out: node:test results
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const dockerDir = join(repoRoot, 'deploy/docker');

/** Instructions of a Dockerfile: { op, args (raw text), line }, continuations joined, comments dropped. */
function parseDockerfile(text) {
  const instructions = [];
  let pending = '';
  let startLine = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!pending && (line === '' || line.startsWith('#'))) return;
    if (pending && line.startsWith('#')) return;
    if (!pending) startLine = i + 1;
    if (line.endsWith('\\')) {
      pending += line.slice(0, -1) + ' ';
      return;
    }
    const full = (pending + line).trim();
    pending = '';
    const [op, ...rest] = full.split(/\s+/);
    instructions.push({ op: op.toUpperCase(), args: rest.join(' '), line: startLine });
  });
  return instructions;
}

/** COPY/ADD arguments -> { flags, sources, dest } (shell or JSON form). */
function parseCopy(args) {
  const words = args.trim().startsWith('[') ? JSON.parse(args) : args.split(/\s+/);
  const flags = Object.fromEntries(
    words.filter((w) => w.startsWith('--')).map((w) => w.slice(2).split('=')).map(([k, v]) => [k, v ?? true]),
  );
  const paths = words.filter((w) => !w.startsWith('--'));
  return { flags, sources: paths.slice(0, -1), dest: paths.at(-1) };
}

/** Minimal .dockerignore matching: `**\/name` matches that segment anywhere, `a/b` matches a/b and below. */
function isIgnored(path, patterns) {
  const segments = path.split('/');
  return patterns.some((pattern) => {
    if (pattern.startsWith('**/')) {
      const name = pattern.slice(3);
      return name.startsWith('*.') ? segments.some((s) => s.endsWith(name.slice(1))) : segments.includes(name);
    }
    return path === pattern || path.startsWith(`${pattern}/`);
  });
}

const dockerfiles = readdirSync(dockerDir).filter((f) => f.endsWith('.Dockerfile')).sort();

it('has a Dockerfile per app', () => {
  assert.deepEqual(dockerfiles, ['gateway.Dockerfile', 'worker.Dockerfile']);
});

const APP_PORTS = { gateway: [50051, 8080], worker: [9090] };

for (const file of dockerfiles) {
  const app = file.replace('.Dockerfile', '');
  const instructions = parseDockerfile(readFileSync(join(dockerDir, file), 'utf8'));
  const ignoreFile = join(dockerDir, `${file}.dockerignore`);
  const ignorePatterns = existsSync(ignoreFile)
    ? readFileSync(ignoreFile, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))
    : [];

  // Split into stages: FROM <image> AS <name>.
  const stages = [];
  for (const ins of instructions) {
    if (ins.op === 'FROM') stages.push({ name: ins.args.split(/\s+as\s+/i)[1] ?? String(stages.length), body: [] });
    else if (stages.length) stages.at(-1).body.push(ins);
  }

  describe(file, () => {
    it('is multi-stage on node:20-bookworm-slim', () => {
      const arg = instructions.find((i) => i.op === 'ARG' && i.args.startsWith('NODE_IMAGE='));
      assert.equal(arg?.args, 'NODE_IMAGE=node:20-bookworm-slim');
      assert.deepEqual(stages.map((s) => s.name), ['build', 'runtime']);
    });

    it('COPYs only sources that exist in the repository and survive .dockerignore', () => {
      const copies = instructions.filter((i) => (i.op === 'COPY' || i.op === 'ADD') && !parseCopy(i.args).flags.from);
      assert.ok(copies.length > 0);
      for (const ins of copies) {
        for (const source of parseCopy(ins.args).sources) {
          const rel = posix.normalize(source).replace(/\/$/, '');
          assert.ok(existsSync(join(repoRoot, rel)), `line ${ins.line}: COPY source ${source} does not exist`);
          assert.ok(!isIgnored(rel, ignorePatterns), `line ${ins.line}: COPY source ${source} is excluded by .dockerignore`);
        }
      }
    });

    it('COPY --from=build takes only what the build stage copied or produced', () => {
      const build = stages.find((s) => s.name === 'build');
      const workdir = build.body.find((i) => i.op === 'WORKDIR').args;
      const copiedIn = build.body.filter((i) => i.op === 'COPY').flatMap((i) => {
        const { sources, dest } = parseCopy(i.args);
        return dest.endsWith('/') ? sources.map((s) => posix.join(dest, posix.basename(s))) : [dest];
      });
      const built = build.body
        .filter((i) => i.op === 'RUN' && i.args.includes('tsc -b'))
        .flatMap((i) => i.args.split('&&')[0].split(/\s+/).slice(3))
        .map((project) => `${project}/dist`);
      const produced = new Set(['node_modules', ...built]);
      for (const ins of instructions.filter((i) => i.op === 'COPY' && parseCopy(i.args).flags.from === 'build')) {
        for (const source of parseCopy(ins.args).sources) {
          const rel = posix.relative(workdir, source);
          const ok = produced.has(rel) || copiedIn.some((c) => rel === c || rel.startsWith(`${c}/`) || c === '.' || c === './');
          assert.ok(ok, `line ${ins.line}: ${source} is neither copied into nor produced by the build stage`);
        }
      }
    });

    it("runs the app's main as a non-root user with a HEALTHCHECK on its port", () => {
      const runtime = stages.find((s) => s.name === 'runtime').body;
      const user = runtime.filter((i) => i.op === 'USER').at(-1);
      assert.ok(user && user.args !== 'root' && user.args !== '0', 'non-root USER');
      const main = JSON.parse(readFileSync(join(repoRoot, 'apps', app, 'package.json'), 'utf8')).main;
      const cmd = JSON.parse(runtime.find((i) => i.op === 'CMD').args);
      assert.deepEqual(cmd, ['node', posix.join('apps', app, main)]);
      const exposed = runtime.filter((i) => i.op === 'EXPOSE').flatMap((i) => i.args.split(/\s+/).map(Number));
      assert.deepEqual(exposed, APP_PORTS[app]);
      const healthcheck = runtime.find((i) => i.op === 'HEALTHCHECK');
      assert.ok(healthcheck, 'HEALTHCHECK');
      assert.match(healthcheck.args, /\/healthz/);
      assert.match(healthcheck.args, new RegExp(String(APP_PORTS[app].at(-1))));
    });
  });
}
