import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { status as Status } from '@grpc/grpc-js';
import { InvalidRequestError, loadModel, validateGenerationRequest } from '@kcache-serve/kcache/light';
import { stories260kDir } from '@kcache-serve/kcache/testing';
import { GENERATION_JOB_NAME, GenerationJobRequest, generationJobId, newRelayCapability, relay } from '@kcache-serve/proto';
import { collectStream, RecordingRelay, ServingCluster, startRecordingRelay, waitFor } from '@kcache-serve/proto/dist/testing';

/**
 * The faces a request meets from the edge to the engine:
 * - one validator: a bad request refused by the gateway and the same request queued straight for a
 *   worker (skipping the gateway) fail with the same structured error, the engine's (field, reason);
 * - the gateway uses only the engine library's light entry point: onnxruntime-node is never loaded in
 *   its process (the worker, which runs the model, is the control that the probe sees it when it is).
 */
const probeDir = mkdtempSync(join(tmpdir(), 'kcache-loaded-modules-'));
const probeScript = join(probeDir, 'probe.js');
// Preloaded with --require: on SIGUSR2 the process writes the files its require.cache holds.
writeFileSync(
  probeScript,
  `process.on('SIGUSR2', () => require('node:fs').writeFileSync(process.env.LOADED_MODULES_FILE, JSON.stringify(Object.keys(require.cache))));\n`,
);
const probeEnv = (name: string) => ({ NODE_OPTIONS: `--require ${probeScript}`, LOADED_MODULES_FILE: join(probeDir, `${name}.json`) });

let cluster: ServingCluster;
let relayServer: RecordingRelay;
let relayAddress: string;
const received: relay.RelayEvent[] = [];

before(async () => {
  cluster = await ServingCluster.start({ model: stories260kDir(), numWorkers: 0, gatewayEnv: probeEnv('gateway') });
  await cluster.startWorker(probeEnv('worker'));
  await cluster.waitUntilReady();
  // A relay standing in for the gateway that would own a job queued straight into Redis.
  relayServer = await startRecordingRelay((event) => received.push(event));
  relayAddress = relayServer.address;
});

after(async () => {
  relayServer?.close();
  await cluster?.stop();
  rmSync(probeDir, { recursive: true, force: true });
});

async function loadedModules(child: import('node:child_process').ChildProcess, name: string): Promise<string[]> {
  const file = join(probeDir, `${name}.json`);
  rmSync(file, { force: true });
  child.kill('SIGUSR2');
  let modules: string[] = [];
  await waitFor(() => {
    try {
      modules = JSON.parse(readFileSync(file, 'utf8')) as string[];
      return true;
    } catch {
      return false;
    }
  }, 10_000, `${name}'s module list`);
  return modules;
}

const isOnnxRuntime = (path: string) => /[\\/]onnxruntime-(node|common)[\\/]/.test(path);

describe('one validator from edge to engine', () => {
  it('a bad request at the gateway and the same request as a job fed straight to a worker fail with the same (field, reason)', async () => {
    const vocabSize = loadModel(stories260kDir()).weights.config.vocabSize;
    const request: GenerationJobRequest = {
      requestId: `bad-${randomUUID()}`,
      promptTokenIds: [1, vocabSize + 7],
      maxNewTokens: 4,
      sampling: { temperature: 0, topK: 0, topP: 1, seed: 1 },
      stopTokenIds: [],
      stopStrings: [],
      attention: { mode: 'full', topN: 64, denseLayers: 0, renormalize: false },
      priority: 0,
      logprobs: false,
    };
    // The engine library's validator, called directly: the reference.
    let expected: InvalidRequestError | undefined;
    try {
      validateGenerationRequest(request, loadModel(stories260kDir()).weights.config);
    } catch (error) {
      if (error instanceof InvalidRequestError) expected = error;
    }
    assert.ok(expected, 'the engine validator refuses the request');
    assert.deepEqual([expected.field, expected.reason], ['prompt_token_ids', `token id ${vocabSize + 7} is outside the vocabulary [0, ${vocabSize})`]);

    // Through the gateway: INVALID_ARGUMENT whose details are the engine's field and reason.
    const viaGateway = await collectStream(cluster.client(), { requestId: request.requestId, promptTokenIds: [...request.promptTokenIds], maxNewTokens: 4 });
    assert.equal(viaGateway.error?.code, Status.INVALID_ARGUMENT);
    assert.equal(viaGateway.error?.details, `${expected.field}: ${expected.reason}`);

    // Straight into the queue: the worker fails the job with the same field and reason, unretried.
    const jobId = generationJobId(request.requestId);
    const queue = cluster.queue();
    await queue.add(GENERATION_JOB_NAME, { request, relayAddress, submissionId: randomUUID(), relayCapability: newRelayCapability(), deadlineUnixMs: null }, { jobId, attempts: 3 });
    await waitFor(async () => (await queue.getJob(jobId).then((job) => job?.getState())) === 'failed', 15_000, 'the bad job to fail');
    const job = await queue.getJob(jobId);
    assert.equal(job!.failedReason, expected.message);
    assert.equal(job!.attemptsMade, 1, 'an invalid request is not retried');
    const failure = received.find((e) => e.requestId === request.requestId && e.event?.$case === 'failed');
    assert.ok(failure?.event?.$case === 'failed');
    assert.equal(failure.event.value.kind, relay.FailureKind.FAILURE_KIND_INVALID_REQUEST);
    assert.deepEqual([failure.event.value.field, failure.event.value.message], [expected.field, expected.reason]);
  });
});

describe('the gateway loads no onnxruntime', () => {
  it('after serving a generation, the gateway has not loaded onnxruntime-node; the worker has', async () => {
    const served = await collectStream(cluster.client(), { prompt: 'Once upon a time', maxNewTokens: 4 });
    assert.equal(served.error, null);
    assert.equal(served.tokens.length, 4);
    const gatewayModules = await loadedModules(cluster.gateway.child, 'gateway');
    assert.ok(gatewayModules.some((path) => /[\\/]kcache[\\/]dist[\\/]light\.js$/.test(path)), 'the probe sees the gateway load the light entry point');
    assert.deepEqual(gatewayModules.filter(isOnnxRuntime), []);
    const workerModules = await loadedModules(cluster.workers[0].child, 'worker');
    assert.ok(workerModules.some(isOnnxRuntime), 'the worker runs the model, so the probe sees onnxruntime-node there');
  });
});
