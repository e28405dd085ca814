#!/usr/bin/env python3
"""Transformers as the oracle for the Hugging Face loader: writes libs/kcache/fixtures/hf/.

What goes in:
  --stories-hf DIR   stories260K converted by our own converter (convertModel(stories260K, DIR));
                     its tokenizer.json (SentencePiece-style, 512 pieces) is reused by the Llama and
                     Mistral fixtures, and transformers checks the converted weights against the oracle.
  --inp FILE         llama.cpp's tokenizer test strings (../shared/tokenizers/ggml-vocab-*.gguf.inp).
  --oracle FILE      ../shared/oracle/stories260K-greedy.json.
What comes out, under --out:
  llama-gqa-llama3rope-tied-f32/   LlamaForCausalLM, GQA 4:2, rope_theta 5e5, llama3 rope_scaling,
                                   tied embeddings, fp32, Llama-2 style chat template.
  mistral-sharded-bf16/            MistralForCausalLM, GQA 8:2, sliding_window 128, untied, bf16,
                                   sharded (model.safetensors.index.json).
  qwen2-bias-tied-f16/             Qwen2ForCausalLM, q/k/v biases, GQA 4:1, rope_theta 1e6, tied,
                                   fp16, vocab 400 > tokenizer (padding rows), a byte-level BPE
                                   trained here, ChatML chat template.
  Each has reference.json: transformers' first-step logits (base64 little-endian float32) and
  greedy tokens with their top-1/top-2 margins, for fixed prompt ids, computed in fp32 on the CPU
  from the weights as saved (16-bit fixtures are rounded first); tokenizer ids for every test
  string (tokenizers' Rust encoder on tokenizer.json, add_special_tokens=False) and the chat
  template rendered by apply_chat_template.
  stories260K-transformers.json: transformers' greedy tokens on the converted stories260K folder.

Run on a machine with torch, transformers and tokenizers (the lent GPU machine; runs on its CPU):
  python3 libs/kcache/scripts/make-hf-fixtures.py --stories-hf S --inp I --oracle O --out libs/kcache/fixtures/hf
"""
import argparse
import base64
import json
import os
import random
import shutil
import sys
import traceback

import numpy as np
import torch
import transformers
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

try:
    from transformers import PreTrainedTokenizerFast as FastTokenizer
except ImportError:  # transformers 5 may only have the new name
    from transformers import TokenizersBackend as FastTokenizer

V5 = int(transformers.__version__.split(".")[0]) >= 5
QWEN2_PATTERN = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
LLAMA2_CHAT_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = '<<SYS>>\\n' + messages[0]['content'].strip() + '\\n<</SYS>>\\n\\n' %}"
    "{% else %}{% set loop_messages = messages %}{% set system_message = '' %}{% endif %}"
    "{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 %}{% set content = system_message + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' ' + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"
)
CHATML_TEMPLATE = (
    "{%- if messages[0]['role'] != 'system' %}{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{%- endif %}"
    "{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
CHAT = [
    {"role": "system", "content": "You tell short stories."},
    {"role": "user", "content": "Tell me about a cat named Max."},
    {"role": "assistant", "content": "Max was a big cat. He liked milk."},
    {"role": "user", "content": "What did Max do next?"},
]


def b64(values):
    return base64.b64encode(np.asarray(values, dtype="<f4").tobytes()).decode()


def randomize(model, seed):
    """Every parameter random (norm weights near 1, biases nonzero), so permutations and biases matter."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            if "norm" in name:
                p.copy_(1 + 0.1 * noise)
            elif name.endswith("bias"):
                p.copy_(0.5 * noise)
            else:
                p.copy_(0.15 * noise)


def load_fp32(path):
    kwargs = {"dtype": torch.float32} if V5 else {"torch_dtype": torch.float32}
    return transformers.AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager", **kwargs).eval()


def greedy(model, prompt, steps):
    """Full forward per step (no cache): tokens, top1 - top2 margins, first-step logits."""
    ids = list(prompt)
    tokens, margins, first = [], [], None
    with torch.no_grad():
        for _ in range(steps):
            logits = model(torch.tensor([ids])).logits[0, -1].float()
            if first is None:
                first = logits.tolist()
            top = torch.topk(logits, 2)
            tokens.append(int(top.indices[0]))
            margins.append(float(top.values[0] - top.values[1]))
            ids.append(tokens[-1])
    return tokens, margins, first


def save_model(model, out, dtype, shard):
    if dtype == "bf16":
        model = model.to(torch.bfloat16)
    elif dtype == "f16":
        model = model.to(torch.float16)
    model.save_pretrained(out, max_shard_size=shard) if shard else model.save_pretrained(out)


def rope_kwargs(theta, scaling, v5):
    if v5:
        return {"rope_parameters": {"rope_type": "default", "rope_theta": theta, **(scaling or {})}}
    return {"rope_theta": theta, **({"rope_scaling": scaling} if scaling else {})}


def make_model(kind, config_kwargs, rope, seed, out, dtype, shard, tokenizer, prompts, cases, chat, steps=24):
    cls = {"llama": transformers.LlamaConfig, "mistral": transformers.MistralConfig, "qwen2": transformers.Qwen2Config}[kind]
    try:
        config = cls(**config_kwargs, **rope_kwargs(*rope, V5))
    except (TypeError, ValueError, KeyError):
        config = cls(**config_kwargs, **rope_kwargs(*rope, not V5))
    print(kind, "config:", {k: v for k, v in config.to_dict().items() if "rope" in k}, file=sys.stderr)
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    randomize(model, seed)
    if config.tie_word_embeddings:
        model.tie_weights()
    os.makedirs(out, exist_ok=True)
    save_model(model, out, dtype, shard)
    tokenizer.save_pretrained(out)
    reloaded = load_fp32(out)  # the reference runs on the weights exactly as stored
    reference = {
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "prompts": [],
        "tokenizer_cases": [],
    }
    for prompt in prompts:
        tokens, margins, first = greedy(reloaded, prompt, steps)
        reference["prompts"].append(
            {"prompt_token_ids": prompt, "greedy_token_ids": tokens, "greedy_margins": margins, "first_step_logits_f32": b64(first)}
        )
    rust = Tokenizer.from_file(os.path.join(out, "tokenizer.json"))
    for text in cases:
        reference["tokenizer_cases"].append({"text": text, "ids": rust.encode(text, add_special_tokens=False).ids, "ids_with_special": rust.encode(text).ids})
    rendered = tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
    ids = tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=True)
    if isinstance(ids, dict) or hasattr(ids, "keys"):
        ids = ids["input_ids"]
    reference["chat"] = {"messages": chat, "add_generation_prompt": True, "text": rendered, "ids": list(ids)}
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(reference, f, indent=1)
        f.write("\n")
    sizes = {name: os.path.getsize(os.path.join(out, name)) for name in sorted(os.listdir(out))}
    print(out, sizes, "min margin", min(min(p["greedy_margins"]) for p in reference["prompts"]))


def spm_tokenizer(stories_hf):
    tok = FastTokenizer(tokenizer_file=os.path.join(stories_hf, "tokenizer.json"), bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    tok.chat_template = LLAMA2_CHAT_TEMPLATE
    return tok


def byte_level_tokenizer(corpus):
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=381, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus, trainer)
    tok.add_special_tokens(["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    fast = FastTokenizer(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.chat_template = CHATML_TEMPLATE
    return fast


def stories_check(stories_hf, oracle_path, out):
    """transformers on our converted stories260K folder against the llama2.c reference tokens."""
    oracle = json.load(open(oracle_path))
    model = load_fp32(stories_hf)
    rust = Tokenizer.from_file(os.path.join(stories_hf, "tokenizer.json"))
    results = []
    for record in oracle["prompts"]:
        prompt = record["prompt_token_ids"]
        with torch.no_grad():
            generated = model.generate(
                torch.tensor([prompt]), max_length=513, do_sample=False, eos_token_id=1, pad_token_id=0, min_new_tokens=0
            )[0, len(prompt):].tolist()
        if generated and generated[-1] == 1:
            generated = generated[:-1]
        expected = record["generated_token_ids"]
        ties = [p - len(prompt) + 1 for p in record["near_ties"]]
        limit = min(ties) if ties else None
        matches = generated[:limit] == expected[:limit] if limit is not None else generated == expected
        encoded = rust.encode(record["prompt"]).ids
        results.append({"id": record["id"], "tokens_match": matches, "compared": limit if limit is not None else len(expected), "encode_matches": encoded == prompt})
    json.dump({"transformers_version": transformers.__version__, "results": results}, open(out, "w"), indent=1)
    print("stories260K via transformers:", sum(r["tokens_match"] for r in results), "/", len(results), "token matches;",
          sum(r["encode_matches"] for r in results), "/", len(results), "prompt encodings match")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--stories-hf", required=True)
    parser.add_argument("--inp", required=True)
    parser.add_argument("--oracle", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(4)
    torch.backends.cuda.matmul.allow_tf32 = False
    print("torch", torch.__version__, "transformers", transformers.__version__, file=sys.stderr)
    cases = open(args.inp, encoding="utf-8").read().split("\n__ggml_vocab_test__\n")[:-1]
    oracle_prompts = [r["prompt"] for r in json.load(open(args.oracle))["prompts"]]
    rng = random.Random(1234)

    def prompts(vocab):
        return [[rng.randrange(3, vocab) for _ in range(7)], [rng.randrange(3, vocab) for _ in range(23)]]

    failures = []

    def attempt(name, fn):
        try:
            fn()
        except Exception:  # keep going: one run of the device should bring back every fixture it can
            failures.append(name)
            traceback.print_exc()

    spm = spm_tokenizer(args.stories_hf)
    llama3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 8.0, "original_max_position_embeddings": 32}
    attempt("llama", lambda: make_model(
        "llama",
        dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
             max_position_embeddings=256, rms_norm_eps=1e-5, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2),
        (500000.0, llama3), 1, os.path.join(args.out, "llama-gqa-llama3rope-tied-f32"), "f32", None, spm, prompts(512), cases + oracle_prompts, CHAT,
    ))
    attempt("mistral", lambda: make_model(
        "mistral",
        dict(vocab_size=512, hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=8, num_key_value_heads=2,
             max_position_embeddings=256, sliding_window=128, rms_norm_eps=1e-6, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2,),
        (10000.0, None), 2, os.path.join(args.out, "mistral-sharded-bf16"), "bf16", "100KB", spm, prompts(512), cases[:8], CHAT,
    ))
    qwen_tok = byte_level_tokenizer(cases + oracle_prompts * 3)
    qwen_ids = qwen_tok.convert_tokens_to_ids(["<|endoftext|>", "<|im_end|>"])
    attempt("qwen2", lambda: make_model(
        "qwen2",
        dict(vocab_size=400, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1,
             max_position_embeddings=256, rms_norm_eps=1e-6, tie_word_embeddings=True, use_sliding_window=False,
             bos_token_id=qwen_ids[0], eos_token_id=qwen_ids[1]),
        (1000000.0, None), 3, os.path.join(args.out, "qwen2-bias-tied-f16"), "f16", None, qwen_tok, prompts(len(qwen_tok)), cases + oracle_prompts, CHAT[1:],
    ))
    attempt("stories", lambda: stories_check(args.stories_hf, args.oracle, os.path.join(args.out, "stories260K-transformers.json")))
    print("failures:", failures)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
