"""PyTorch side of `npm run bench -- engine` (bench/engine.ts runs this and prints ratios).

The same steps as alignflow's on the same shapes: SFT (causal LM loss on completion tokens), DPO
(sigmoid loss, beta 0.1, reference log-probs precomputed, chosen+rejected in one forward) and a
reward model (GPT-2 backbone + linear score head on the last token, Bradley-Terry loss), each
forward + backward + AdamW; a 1024^3 matmul; and KV-cached greedy generation. Prints one JSON line
per figure. Usage: python bench/pytorch_ref.py '{"threads":2,"shapes":[{...}],"gen":true}'
"""
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from transformers import GPT2Config, GPT2LMHeadModel


def emit(**kv):
    print(json.dumps(kv), flush=True)


def median_time(fn, reps, warmup=1):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def model_for(shape):
    cfg = GPT2Config(vocab_size=shape["vocab"], n_positions=shape["ctx"], n_embd=shape["d"], n_layer=shape["layers"],
                     n_head=shape["heads"], resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                     bos_token_id=0, eos_token_id=0, loss_type="ForCausalLM")
    torch.manual_seed(0)
    return GPT2LMHeadModel(cfg)


def seq_logps(logits, ids, mask):
    # sum over completion tokens of log softmax(logits[t-1])[ids[t]]
    lp = torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    return (lp * mask[:, 1:]).sum(-1)


def bench_shape(shape, reps):
    B, T, V, P = shape["batch"], shape["ctx"], shape["vocab"], shape["prompt"]
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, V, (B, T), generator=g)
    mask = (torch.arange(T)[None, :] >= P).float().expand(B, T)
    labels = ids.clone()
    labels[:, :P] = -100
    tokens = B * T

    model = model_for(shape)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def sft():
        opt.zero_grad(set_to_none=True)
        model(input_ids=ids, labels=labels).loss.backward()
        opt.step()

    emit(name="sft_step_tokens_per_s", shape=shape["name"], value=tokens / median_time(sft, reps))

    with torch.no_grad():
        ref = seq_logps(model(input_ids=ids).logits, ids, mask)

    def dpo():
        opt.zero_grad(set_to_none=True)
        lp = seq_logps(model(input_ids=ids).logits, ids, mask)
        h = B // 2
        z = 0.1 * ((lp[:h] - ref[:h]) - (lp[h:] - ref[h:]))
        (-F.logsigmoid(z)).mean().backward()
        opt.step()

    emit(name="dpo_step_tokens_per_s", shape=shape["name"], value=tokens / median_time(dpo, reps))

    backbone = model.transformer
    head = torch.nn.Linear(shape["d"], 1, bias=False)
    ropt = torch.optim.AdamW(list(backbone.parameters()) + list(head.parameters()), lr=1e-4)

    def rm():
        ropt.zero_grad(set_to_none=True)
        hid = backbone(input_ids=ids).last_hidden_state[:, -1]
        r = head(hid).squeeze(-1)
        h = B // 2
        (-F.logsigmoid(r[:h] - r[h:])).mean().backward()
        ropt.step()

    emit(name="rm_step_tokens_per_s", shape=shape["name"], value=tokens / median_time(rm, reps))


def bench_matmul():
    a = torch.randn(1024, 1024)
    b = torch.randn(1024, 1024)
    t = median_time(lambda: a @ b, 5)
    emit(name="matmul_gflops", value=2 * 1024 ** 3 / t / 1e9)


def bench_generate(shape):
    model = model_for(shape).eval()
    g = torch.Generator().manual_seed(2)
    prompts = torch.randint(0, shape["vocab"], (16, 16), generator=g)
    new = 64

    def run():
        with torch.no_grad():
            out = model(input_ids=prompts, use_cache=True)
            past = out.past_key_values
            nxt = out.logits[:, -1].argmax(-1, keepdim=True)
            for _ in range(new - 1):
                out = model(input_ids=nxt, past_key_values=past, use_cache=True)
                past = out.past_key_values
                nxt = out.logits[:, -1].argmax(-1, keepdim=True)

    emit(name="generate_tokens_per_s_kv_cache", value=16 * new / median_time(run, 3))


def main():
    cfg = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    torch.set_num_threads(int(cfg.get("threads", 2)))
    emit(name="torch", version=torch.__version__, threads=torch.get_num_threads())
    if cfg.get("matmul", True):
        bench_matmul()
    for shape in cfg.get("shapes", []):
        bench_shape(shape, int(cfg.get("reps", 3)))
    if cfg.get("gen"):
        bench_generate(cfg["gen"])


if __name__ == "__main__":
    main()
