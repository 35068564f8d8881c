"""PyTorch reference for what one DPO step on a SmolLM2-135M-shaped model costs, with LoRA and with
full fine-tuning, on whatever device is given. It answers "what does this model cost on a GPU (or on
this CPU) in the reference stack", beside which alignflow's own figures are read (docs/engine-models.md).

The model is random-initialised with SmolLM2-135M's published shape (LlamaConfig: hidden 576, 30 layers,
9 query / 3 key-value heads, MLP 1536, vocab 49152, tied embeddings), so no download is needed.
The DPO loss is the sigmoid loss of Rafailov et al. 2023 (eq. 7), as TRL's DPOTrainer computes it; the
reference log-probs come from the same model with adapters off (LoRA) or from a frozen copy (full).

    python bench/torch_llama_dpo.py --device cuda --dtype bf16 --pairs 8 --seq 512
Prints one JSON line per configuration.
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F
from transformers import LlamaConfig, LlamaForCausalLM

SMOLLM2_135M = dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                    num_key_value_heads=3, vocab_size=49152, max_position_embeddings=8192, rope_theta=100000.0,
                    rms_norm_eps=1e-5, tie_word_embeddings=True, hidden_act='silu')


def seq_logps(model, ids, prompt_len):
    logits = model(input_ids=ids).logits[:, :-1].float()
    logp = torch.gather(F.log_softmax(logits, -1), 2, ids[:, 1:, None]).squeeze(-1)
    mask = torch.zeros_like(logp)
    mask[:, prompt_len - 1:] = 1.0
    return (logp * mask).sum(-1)


def dpo_loss(pc, pr, rc, rr, beta=0.1):
    return -F.logsigmoid(beta * ((pc - rc) - (pr - rr))).mean()


def run(args, mode):
    torch.manual_seed(0)
    dtype = {'bf16': torch.bfloat16, 'fp32': torch.float32}[args.dtype]
    dev = torch.device(args.device)
    model = LlamaForCausalLM(LlamaConfig(**SMOLLM2_135M, torch_dtype=dtype)).to(dev, dtype)
    ref = None
    if mode == 'lora':
        from peft import LoraConfig, get_peft_model
        model = get_peft_model(model, LoraConfig(r=args.r, lora_alpha=2 * args.r, lora_dropout=0.0,
                                                 target_modules=['q_proj', 'k_proj', 'v_proj', 'o_proj',
                                                                 'gate_proj', 'up_proj', 'down_proj']))
    else:
        ref = LlamaForCausalLM(LlamaConfig(**SMOLLM2_135M, torch_dtype=dtype)).to(dev, dtype).eval()
        ref.load_state_dict(model.state_dict())
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5)
    n, L, P = args.pairs, args.seq, args.seq // 4
    gen = torch.Generator().manual_seed(1)
    chosen = torch.randint(0, 49152, (n, L), generator=gen).to(dev)
    rejected = torch.randint(0, 49152, (n, L), generator=gen).to(dev)
    rejected[:, :P] = chosen[:, :P]
    ids = torch.cat([chosen, rejected])

    def step():
        with torch.no_grad():
            if mode == 'lora':
                with model.disable_adapter():
                    r = seq_logps(model, ids, P)
            else:
                r = seq_logps(ref, ids, P)
        p = seq_logps(model, ids, P)
        loss = dpo_loss(p[:n], p[n:], r[:n], r[n:])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    for _ in range(args.warmup):
        step()
    if dev.type == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    if dev.type == 'cuda':
        torch.cuda.synchronize()
    dt = (time.perf_counter() - t0) / args.steps
    out = dict(mode=mode, device=args.device, dtype=args.dtype, pairs=n, seq=L, threads=torch.get_num_threads(),
               step_s=round(dt, 4), tokens_per_s=round(2 * n * L / dt), loss=round(loss.item(), 5),
               trainable_params=sum(p.numel() for p in params),
               total_params=sum(p.numel() for p in model.parameters()))
    if dev.type == 'cuda':
        out['peak_gpu_mem_gib'] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        out['gpu'] = torch.cuda.get_device_name()
    print(json.dumps(out), flush=True)


if __name__ == '__main__':
    ap = argparse.ArgumentParser()
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--dtype', default='bf16', choices=['bf16', 'fp32'])
    ap.add_argument('--pairs', type=int, default=8)
    ap.add_argument('--seq', type=int, default=512)
    ap.add_argument('--r', type=int, default=16)
    ap.add_argument('--steps', type=int, default=10)
    ap.add_argument('--warmup', type=int, default=3)
    ap.add_argument('--threads', type=int, default=0)
    ap.add_argument('--modes', default='lora,full')
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    for m in a.modes.split(','):
        run(a, m)
