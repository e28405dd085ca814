import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Metadata } from '@grpc/grpc-js';
import { repoRoot, stories260kDir } from '@kcache-serve/kcache/testing';
import { bearer, markdownCommands, parseGrpcurlArgv, ReflectionClient, ServingCluster, shellArgv } from '@kcache-serve/proto/dist/testing';
import { sha256Hex } from '../auth/api-key';

/**
 * The README's API examples, run as printed against a real gateway and worker with API keys on; only the
 * printed addresses (127.0.0.1:50051 and :8080) are replaced by the test cluster's. curl runs itself; the
 * grpcurl commands are read by bash (a shell function stands in for the binary and records its argv) and
 * replayed by a client that builds every message from server reflection, as grpcurl does.
 */
const README = join(repoRoot(), 'README.md');
const CHAT_MODEL = join(repoRoot(), 'libs', 'kcache', 'fixtures', 'hf', 'qwen2-bias-tied-f16');
const API_KEY = 'kc-readme-example-key';
const PRINTED_GRPC_ADDRESS = '127.0.0.1:50051';
const PRINTED_HTTP_URL = 'http://127.0.0.1:8080';

let plain: ServingCluster;
let chat: ServingCluster;

before(async () => {
  const gatewayEnv = { AUTH_MODE: 'api-key', API_KEY_HASHES: `readme:${sha256Hex(API_KEY)}` };
  [plain, chat] = await Promise.all([
    ServingCluster.start({ model: stories260kDir(), numWorkers: 1, gatewayEnv, apiKey: API_KEY }),
    ServingCluster.start({ model: CHAT_MODEL, numWorkers: 1, gatewayEnv, apiKey: API_KEY }),
  ]);
});

after(async () => {
  await Promise.all([plain?.stop(), chat?.stop()]);
});

/** The cluster an example is meant for: the chat examples need a model with a chat template. */
function clusterFor(command: string): ServingCluster {
  return command.includes('"messages"') ? chat : plain;
}

/** grpcurl's reply on stdout: the response messages as JSON, one after another. */
async function replayGrpcurl(command: string, cluster: ServingCluster): Promise<Record<string, unknown>[]> {
  const call = parseGrpcurlArgv(shellArgv(command.replace(PRINTED_GRPC_ADDRESS, cluster.grpcAddress), 'grpcurl', { KEY: API_KEY }));
  assert.ok(call.isPlaintext);
  const metadata = new Metadata();
  for (const [name, value] of call.headers) metadata.set(name, value);
  return withReflectionClient(call.address, cluster, metadata, (client) => client.invoke(call.method, call.data));
}

async function withReflectionClient<T>(address: string, cluster: ServingCluster, metadata: Metadata, use: (client: ReflectionClient) => Promise<T>): Promise<T> {
  const client = new ReflectionClient(address, cluster.channelCredentials(), metadata);
  try {
    return await use(client);
  } finally {
    client.close();
  }
}

describe('README grpcurl examples', () => {
  const commands = markdownCommands(README, 'grpcurl');

  it('the README prints the two grpcurl examples (a prompt and a chat)', () => {
    assert.equal(commands.length, 2, commands.join('\n---\n'));
  });

  for (const command of commands) {
    it(`streams tokens then a final event honouring every field: ${command.split('\n')[1].trim().slice(0, 60)}`, async () => {
      const responses = await replayGrpcurl(command, clusterFor(command));
      const request = JSON.parse(parseGrpcurlArgv(shellArgv(command, 'grpcurl', { KEY: API_KEY })).data) as { max_new_tokens: number };
      const tokens = responses.filter((r) => r.token !== undefined);
      const final = responses.at(-1)?.final as { finish_reason: string; usage: { completion_tokens: number } } | undefined;
      assert.ok(final !== undefined, JSON.stringify(responses.at(-1)));
      assert.equal(tokens.length, final.usage.completion_tokens);
      // max_new_tokens is honoured, so the snake_case field reached the server (not dropped or refused)
      assert.ok(final.usage.completion_tokens <= request.max_new_tokens);
      if (final.finish_reason === 'FINISH_REASON_LENGTH') assert.equal(final.usage.completion_tokens, request.max_new_tokens);
    });
  }

  it('refuses a JSON key that is no field, naming the message type and the key (as grpcurl does)', async () => {
    await withReflectionClient(plain.grpcAddress, plain, bearer(API_KEY), (client) =>
      assert.rejects(client.invoke('kcache.v1.Generation/Generate', '{"prompt": "x", "max_tokens": 4}'), /kcache\.v1\.GenerateRequest" has no field named "max_tokens"/),
    );
  });

  it('reflection advertises the proto field names (snake_case), as protoc writes them', async () => {
    const generate = (await withReflectionClient(plain.grpcAddress, plain, bearer(API_KEY), (client) => client.describe('kcache.v1.Generation'))).methods.Generate;
    generate.resolve();
    const names = generate.resolvedRequestType?.fieldsArray.map((f) => f.name) ?? [];
    assert.ok(names.includes('max_new_tokens') && names.includes('prompt_token_ids'), names.join());
  });
});

describe('README curl examples', () => {
  const commands = markdownCommands(README, 'curl');

  it('the README prints the two curl examples (completions and chat completions)', () => {
    assert.equal(commands.length, 2, commands.join('\n---\n'));
  });

  for (const command of commands) {
    it(`streams server-sent events ending in [DONE]: ${command.split(' ')[2]}`, () => {
      const cluster = clusterFor(command);
      const out = execFileSync('bash', ['-c', command.replace(PRINTED_HTTP_URL, cluster.httpUrl)], {
        env: { ...process.env, KEY: API_KEY },
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const events = out.split('\n').filter((line) => line.startsWith('data: ')).map((line) => line.slice('data: '.length));
      assert.equal(events.at(-1), '[DONE]', out);
      const chunks = events.slice(0, -1).map((e) => JSON.parse(e) as { choices: Array<{ text?: string; delta?: { content?: string }; finish_reason?: string | null }> });
      const choices = chunks.flatMap((c) => c.choices);
      const text = choices.map((choice) => choice.text ?? choice.delta?.content ?? '').join('');
      const finish = choices.map((choice) => choice.finish_reason).filter((reason) => reason);
      assert.equal(finish.length, 1, out);
      // The examples sample (temperature 1, no seed): the chat fixture, a random model with 400 tokens, may pick its
      // end-of-text token first, and then the stream says so (finish_reason stop) with no text.
      assert.ok(text.length > 0 || finish[0] === 'stop', out);
    });
  }
});
