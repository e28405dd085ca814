#!/usr/bin/env python3
"""A gRPC client of the public Generation API that shares no code with the project (grpcio only).

Run by scripts/device/cuda-serving.sh against a running gateway:
  python3 serving-client.py --target 127.0.0.1:PORT --oracle ORACLE.json --out OUT.json
         [--api-key KEY] [--concurrency 32] [--requests 128] [--max-new-tokens 128] [--top-n 512]

1. schema: server reflection (grpc.reflection.v1alpha, hand-encoded) lists kcache.v1.Generation, and the
   field numbers and types this client encodes match the server's own descriptors of kcache/v1/generation.proto.
2. oracle: the stories260K greedy prompts, all at once, temperature 0, in full attention and in kcache (top_n):
   the streamed token ids must equal the oracle's generated_token_ids, token indexes 0, 1, 2, ... and the
   finish reason EOS (oracle stop "bos") or LENGTH (oracle stop "seq_len"). A stream that differs only at or
   after one of the oracle's near ties (a top-1/top-2 logit gap under 1e-3) is reported, and passes.
3. load: a closed loop of `concurrency` streams, `requests` requests of `max_new_tokens` tokens (prompt
   "Once upon a time", temperature 0.8, seed = request index): tokens/s, TTFT and inter-token percentiles.
Writes OUT.json; exits 1 when a check fails.

Messages are encoded and decoded by hand (protobuf wire format): the device image is known to have grpcio
only; generated stubs need grpcio-tools (protoc) and descriptor-based messages need protobuf, neither of
which can be installed there. Step 1 guards the hand encoding against the served schema.
"""
import argparse
import asyncio
import json
import struct
import sys
import time

try:
    import grpc
    import grpc.aio
except ImportError as error:  # cuda-serving.sh picks a python3 that imports grpc; this is for direct use
    sys.exit(f"serving-client: grpcio is needed (python3 -m pip install grpcio): {error}")

GENERATE = '/kcache.v1.Generation/Generate'
REFLECTION = '/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo'
MODE_FULL, MODE_KCACHE = 1, 2
FINISH_NAMES = {0: 'UNSPECIFIED', 1: 'LENGTH', 2: 'STOP', 3: 'EOS', 4: 'CANCELLED'}
PROMPT, TEMPERATURE = 'Once upon a time', 0.8

# --- protobuf wire format -----------------------------------------------------------------------------------


def varint(value):
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field_varint(number, value):
    return varint(number << 3) + varint(value)


def field_bytes(number, data):
    return varint(number << 3 | 2) + varint(len(data)) + data


def field_double(number, value):
    return varint(number << 3 | 1) + struct.pack('<d', value)


def decode(data):
    """{field number: [values]}: varints as int, fixed64 as bytes, length-delimited as bytes."""
    fields, pos = {}, 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = read_varint(data, pos)
        elif wire == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 2:
            size, pos = read_varint(data, pos)
            value, pos = data[pos:pos + size], pos + size
        elif wire == 5:
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise ValueError(f'unsupported wire type {wire} (field {number})')
        fields.setdefault(number, []).append(value)
    return fields


def read_varint(data, pos):
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def first(fields, number, default=None):
    return fields.get(number, [default])[0]


def as_double(raw):
    return struct.unpack('<d', raw)[0] if raw is not None else 0.0


# kcache.v1 messages: what this client sends and reads, as (message, field) -> (number, FieldDescriptorProto type).
# Types: 1 double, 5 int32, 9 string, 11 message, 13 uint32, 14 enum, 8 bool.
SCHEMA = {
    ('GenerateRequest', 'request_id'): (1, 9),
    ('GenerateRequest', 'prompt'): (2, 9),
    ('GenerateRequest', 'prompt_token_ids'): (3, 5),
    ('GenerateRequest', 'max_new_tokens'): (4, 5),
    ('GenerateRequest', 'sampling'): (5, 11),
    ('GenerateRequest', 'attention'): (8, 11),
    ('SamplingParams', 'temperature'): (1, 1),
    ('SamplingParams', 'seed'): (4, 13),
    ('AttentionParams', 'mode'): (1, 14),
    ('AttentionParams', 'top_n'): (2, 5),
    ('GenerateResponse', 'token'): (1, 11),
    ('GenerateResponse', 'final'): (2, 11),
    ('TokenEvent', 'index'): (1, 13),
    ('TokenEvent', 'token_id'): (2, 13),
    ('TokenEvent', 'text'): (3, 9),
    ('FinalEvent', 'finish_reason'): (1, 14),
    ('FinalEvent', 'usage'): (2, 11),
    ('FinalEvent', 'timings'): (3, 11),
    ('FinalEvent', 'request_id'): (4, 9),
    ('Usage', 'prompt_tokens'): (1, 13),
    ('Usage', 'completion_tokens'): (2, 13),
    ('Timings', 'queue_ms'): (1, 1),
    ('Timings', 'ttft_ms'): (2, 1),
}


def generate_request(request_id, prompt='', prompt_token_ids=(), max_new_tokens=None, temperature=None, seed=None, mode=MODE_FULL, top_n=None):
    out = field_bytes(1, request_id.encode())
    if prompt:
        out += field_bytes(2, prompt.encode())
    if prompt_token_ids:
        out += field_bytes(3, b''.join(varint(t) for t in prompt_token_ids))  # packed
    if max_new_tokens is not None:
        out += field_varint(4, max_new_tokens)
    sampling = b''
    if temperature is not None:
        sampling += field_double(1, temperature)  # optional double: 0.0 is sent (greedy), not left to the default
    if seed is not None:
        sampling += field_varint(4, seed)
    out += field_bytes(5, sampling)
    attention = field_varint(1, mode) + (field_varint(2, top_n) if top_n is not None else b'')
    return out + field_bytes(8, attention)


def parse_response(data):
    """('token', index, token_id, text) or ('final', finish_reason, usage dict, timings dict, request_id)."""
    fields = decode(data)
    if 1 in fields:
        token = decode(fields[1][0])
        return ('token', first(token, 1, 0), first(token, 2, 0), first(token, 3, b'').decode('utf-8', 'replace'))
    final = decode(fields[2][0])
    usage = decode(first(final, 2, b''))
    timings = decode(first(final, 3, b''))
    return ('final', first(final, 1, 0), {'prompt': first(usage, 1, 0), 'completion': first(usage, 2, 0)},
            {'queueMs': as_double(first(timings, 1)), 'ttftMs': as_double(first(timings, 2))}, first(final, 4, b'').decode())


def identity(data):
    return data


# --- 1. schema through server reflection ------------------------------------------------------------------------


async def check_schema(channel, metadata):
    """Lists the services, fetches the file that defines kcache.v1.Generation, and compares SCHEMA with it."""
    call = channel.stream_stream(REFLECTION, request_serializer=identity, response_deserializer=identity)

    async def ask(request):
        stream = call(metadata=metadata)
        await stream.write(request)
        await stream.done_writing()
        async for response in stream:
            return decode(response)
        raise RuntimeError('reflection: no answer')

    listed = await ask(field_bytes(7, b'*'))
    services = [first(decode(s), 1, b'').decode() for s in decode(first(listed, 6, b'')).get(1, [])]
    if 'kcache.v1.Generation' not in services:
        raise RuntimeError(f'reflection: kcache.v1.Generation not served (services: {services})')
    answer = await ask(field_bytes(4, b'kcache.v1.Generation'))
    if 7 in answer:
        raise RuntimeError(f'reflection: error {decode(answer[7][0])}')
    messages = {}
    for file_bytes in decode(first(answer, 4, b'')).get(1, []):
        descriptor = decode(file_bytes)
        if first(descriptor, 2, b'').decode() != 'kcache.v1':
            continue
        for message in descriptor.get(4, []):
            message = decode(message)
            fields = {}
            for field in message.get(2, []):
                field = decode(field)
                fields[first(field, 1).decode()] = (first(field, 3), first(field, 5))
            messages[first(message, 1).decode()] = fields
    mismatches = [f'{m}.{f}: client {want}, server {messages.get(m, {}).get(f)}' for (m, f), want in SCHEMA.items() if messages.get(m, {}).get(f) != want]
    if mismatches:
        raise RuntimeError('the served schema differs from what this client encodes: ' + '; '.join(mismatches))
    return {'services': services, 'fieldsChecked': len(SCHEMA)}


# --- 2. oracle -------------------------------------------------------------------------------------------------------


async def run_stream(channel, metadata, request, on_token=None):
    call = channel.unary_stream(GENERATE, request_serializer=identity, response_deserializer=identity)
    tokens, final, error = [], None, None
    try:
        async for data in call(request, metadata=metadata):
            event = parse_response(data)
            if event[0] == 'token':
                tokens.append(event)
                if on_token:
                    on_token()
            else:
                final = event
    except grpc.aio.AioRpcError as rpc_error:
        error = f'{rpc_error.code().name}: {rpc_error.details()}'
    return tokens, final, error


def check_record(record, tokens, final, error):
    """None when the stream matches the oracle, else the reason; and whether a near tie was needed."""
    if error:
        return error, False
    indexes = [t[1] for t in tokens]
    if indexes != list(range(len(tokens))):
        return f'token indexes are not 0..{len(tokens) - 1}', False
    got, want = [t[2] for t in tokens], record['generated_token_ids']
    if got == want:
        expected_finish = 3 if record['stop_reason'] == 'bos' else 1
        if final is None or final[1] != expected_finish:
            return f'finish {FINISH_NAMES.get(final and final[1])}, oracle stop {record["stop_reason"]}', False
        return None, False
    first_diff = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
    # A step at pos p produces generated token p - len(prompt) + 1.
    ties = [pos - len(record['prompt_token_ids']) + 1 for pos in record['near_ties']]
    if any(first_diff >= t for t in ties):
        return None, True
    return f'token {first_diff}: got {got[first_diff:first_diff + 5]}, oracle {want[first_diff:first_diff + 5]} ({len(got)} vs {len(want)} tokens)', False


async def check_oracle(channel, metadata, records, mode, top_n, run_id):
    name = 'full' if mode == MODE_FULL else f'kcache N={top_n}'
    t0 = time.perf_counter()

    def request(r):
        # An empty prompt cannot be sent as text (the API needs one non-empty input): its token ids are sent.
        text = {'prompt': r['prompt']} if r['prompt'] else {'prompt_token_ids': r['prompt_token_ids']}
        return generate_request(f'{run_id}-oracle-{name.replace(" ", "").replace("=", "")}-{r["id"]}', max_new_tokens=512, temperature=0.0, seed=0,
                                mode=mode, top_n=top_n if mode == MODE_KCACHE else None, **text)

    results = await asyncio.gather(*(run_stream(channel, metadata, request(r)) for r in records))
    seconds = time.perf_counter() - t0
    rows, failures = [], 0
    for record, (tokens, final, error) in zip(records, results):
        reason, at_tie = check_record(record, tokens, final, error)
        failures += reason is not None
        prompt_tokens = final[2]['prompt'] if final else None
        rows.append({'id': record['id'], 'ok': reason is None, 'exact': reason is None and not at_tie, 'reason': reason, 'tokens': len(tokens),
                     'promptTokens': prompt_tokens, 'finish': FINISH_NAMES.get(final[1]) if final else None})
        if prompt_tokens is not None and prompt_tokens != len(record['prompt_token_ids']):
            rows[-1].update(ok=False, reason=f'prompt encoded to {prompt_tokens} tokens, oracle {len(record["prompt_token_ids"])}')
            failures += reason is None
    num_tokens = sum(r['tokens'] for r in rows)
    summary = {'attention': name, 'matches': len(records) - failures, 'exact': sum(r['exact'] for r in rows), 'prompts': len(records),
               'tokens': num_tokens, 'seconds': seconds, 'tokensPerSecond': num_tokens / seconds, 'rows': rows}
    print(f'oracle {name}: {summary["matches"]}/{len(records)} match ({summary["exact"]} exact), {num_tokens} tokens in {seconds:.2f} s', flush=True)
    for r in rows:
        if not r['ok']:
            print(f'  FAIL {r["id"]}: {r["reason"]}', flush=True)
        elif not r['exact']:
            print(f'  {r["id"]}: differs only at or after its near tie', flush=True)
    return summary


# --- 3. load ---------------------------------------------------------------------------------------------------------


def percentiles(values):
    ordered = sorted(values)
    at = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float('nan')  # noqa: E731
    return {'p50': at(0.5), 'p90': at(0.9), 'p99': at(0.99)}


async def closed_loop(channel, metadata, concurrency, num_requests, max_new_tokens, mode, top_n, tag):
    ttft, itl, request_ms = [], [], []
    counts = {'tokens': 0, 'errors': 0, 'next': 0}
    errors = []

    async def client():
        while counts['next'] < num_requests:
            i = counts['next']
            counts['next'] += 1
            sent = last = time.perf_counter()

            def on_token():
                nonlocal last
                now = time.perf_counter()
                (ttft if last == sent else itl).append((now - last) * 1000)
                last = now

            request = generate_request(f'{tag}-{i}', prompt=PROMPT, max_new_tokens=max_new_tokens, temperature=TEMPERATURE, seed=i,
                                       mode=mode, top_n=top_n if mode == MODE_KCACHE else None)
            tokens, _, error = await run_stream(channel, metadata, request, on_token)
            request_ms.append((time.perf_counter() - sent) * 1000)
            counts['tokens'] += len(tokens)
            if error:
                counts['errors'] += 1
                errors.append(error)

    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    return {'concurrency': concurrency, 'numRequests': num_requests, 'numErrors': counts['errors'], 'errors': errors[:5], 'wallSeconds': wall,
            'tokens': counts['tokens'], 'tokensPerSecond': counts['tokens'] / wall, 'ttftMs': percentiles(ttft), 'interTokenMs': percentiles(itl),
            'requestMs': percentiles(request_ms), 'clientCpuFraction': (time.process_time() - cpu0) / wall}


async def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--target', required=True)
    parser.add_argument('--oracle', required=True)
    parser.add_argument('--out', required=True)
    parser.add_argument('--api-key')
    parser.add_argument('--concurrency', type=int, default=32)
    parser.add_argument('--requests', type=int, default=128)
    parser.add_argument('--max-new-tokens', type=int, default=128)
    parser.add_argument('--attention', choices=['full', 'kcache'], default='full', help='attention of the load run')
    parser.add_argument('--top-n', type=int, default=512)
    args = parser.parse_args()
    metadata = (('authorization', f'Bearer {args.api_key}'),) if args.api_key else ()
    records = json.load(open(args.oracle, encoding='utf-8'))['prompts']
    run_id = f'r{int(time.time() * 1000) % 10**9}'
    report = {'client': f'python {sys.version.split()[0]}, grpcio {grpc.__version__}, hand-encoded protobuf', 'target': args.target}
    failed = False
    options = [('grpc.max_receive_message_length', 16 << 20)]
    async with grpc.aio.insecure_channel(args.target, options=options) as channel:
        try:
            report['schema'] = await check_schema(channel, metadata)
            print(f'schema: kcache.v1.Generation served, {report["schema"]["fieldsChecked"]} fields match the client', flush=True)
        except Exception as error:  # the run goes on: the oracle check below is the real test of the encoding
            report['schema'] = {'error': str(error)}
            print(f'schema: not checked ({error})', flush=True)
        report['oracle'] = []
        for mode in (MODE_FULL, MODE_KCACHE):
            summary = await check_oracle(channel, metadata, records, mode, args.top_n, run_id)
            report['oracle'].append(summary)
            failed |= summary['matches'] != summary['prompts']
        mode = MODE_KCACHE if args.attention == 'kcache' else MODE_FULL
        await closed_loop(channel, metadata, args.concurrency, args.concurrency, 16, mode, args.top_n, f'{run_id}-warmup')
        load = await closed_loop(channel, metadata, args.concurrency, args.requests, args.max_new_tokens, mode, args.top_n, f'{run_id}-load')
        load.update(path='serving', attention=args.attention, maxNewTokens=args.max_new_tokens)
        report['load'] = load
        failed |= load['numErrors'] > 0
        print(f'serving c={load["concurrency"]} {load["numRequests"]} requests x {args.max_new_tokens} tokens: {load["tokensPerSecond"]:.0f} tok/s, '
              f'TTFT p50 {load["ttftMs"]["p50"]:.1f} ms, ITL p50 {load["interTokenMs"]["p50"]:.2f} ms, errors {load["numErrors"]}, '
              f'client CPU {load["clientCpuFraction"] * 100:.0f}%', flush=True)
        for error in load['errors']:
            print(f'  error: {error}', flush=True)
    with open(args.out, 'w', encoding='utf-8') as out:
        json.dump(report, out, indent=2)
        out.write('\n')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(asyncio.run(main()))
