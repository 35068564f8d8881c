"""End to end against TRL: the demo's DPO job trained by alignflow's DPO stage and by TRL's DPOTrainer on
the same machine, from the same exported SFT model and the same judged pairs (issue 15, "End to end
against TRL").

    /work/venv/bin/python bench/trl_dpo_e2e.py [--quick] [--pairs N] [--home DIR] [--seed S] [--threads T]

1. alignflow: `alignflow demo` (--quick: the reduced demo, about a fifth of the pairs) in a fresh
   ALIGNFLOW_HOME, on the backend alignflow picks (ALIGNFLOW_BACKEND to force one). Its `dpo` stage
   is the job measured: wall time from the run record (reference log-probs included, as TRL's
   precompute is), final train loss, and eval_rewards/accuracies on the held-out pairs.
2. The SFT model (`models export`) and the judged pairs (`datasets export`, TRL's
   prompt/chosen/rejected format) are written out; --pairs N keeps the first N pairs for TRL only
   (then the tokens/s figures are still comparable; times are not).
3. TRL 1.13 DPOTrainer with the demo's settings (sigmoid loss, β 0.1, lr 1e-4 linear, batch 16, one
   epoch, max_length 32, reference log-probs precomputed, T threads), timed: reference pass + train().
   Then trainer.evaluate on the same held-out pairs.
Tokens are counted once, in Python, with the exported tokenizer: prompt+chosen and prompt+rejected of
every pair, capped at max_length; tokens/s = those tokens over each side's wall time.
Prints one JSON line per side and one with the ratio.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_LENGTH = 32


def alignflow(home, *args, capture=True):
    env = {**os.environ, 'ALIGNFLOW_HOME': home}
    r = subprocess.run(['npx', 'tsx', os.path.join(ROOT, 'src/cli/main.ts'), *args], cwd=ROOT, env=env,
                       capture_output=capture, text=True)
    if r.returncode != 0:
        sys.exit(f'alignflow {" ".join(args)} failed ({r.returncode}):\n{(r.stderr or "")[-3000:]}')
    return r.stdout


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def count_tokens(tok, pairs):
    n = 0
    for p in pairs:
        for side in ('chosen', 'rejected'):
            n += min(MAX_LENGTH, len(tok(p['prompt'] + p[side], add_special_tokens=False)['input_ids']))
    return n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--quick', action='store_true', help='the reduced demo (about a fifth of the pairs)')
    ap.add_argument('--pairs', type=int, default=0, help='TRL side: only the first N pairs')
    ap.add_argument('--home', default='', help='ALIGNFLOW_HOME (default: a fresh temporary folder)')
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--threads', type=int, default=2)
    a = ap.parse_args()
    home = a.home or tempfile.mkdtemp(prefix='alignflow-e2e-')
    out = tempfile.mkdtemp(prefix='alignflow-e2e-out-')

    # --- 1. alignflow: the demo, whose dpo stage is the measured job
    t0 = time.time()
    # one stage at a time: the demo otherwise trains the reward model beside DPO on the same cores
    summary = json.loads(alignflow(home, 'demo', '--seed', str(a.seed), '--json', '--concurrency', '1', *(['--quick'] if a.quick else [])))
    demo_s = time.time() - t0
    run_id = summary.get('run') or summary.get('runId') or summary.get('id')
    run = json.loads(alignflow(home, 'runs', 'show', run_id, '--json'))
    stages = {s['name']: s for s in run['stages']}
    dpo = stages['dpo']
    af_seconds = dpo['seconds']
    final = {**(dpo.get('finalMetrics') or {}), **(dpo.get('evalMetrics') or {})}
    def last(name):
        return final.get(name, final.get('eval_' + name.replace('eval_', '')))

    # --- 2. the exported SFT model and judged pairs
    def output(stage):
        o = stages[stage].get('outputs') or {}
        return next(iter(o.values()), None) if len(o) == 1 else o.get('model') or o.get('dataset')
    sft_model, label_ds = output('sft'), output('label')
    if not sft_model or not label_ds:
        sys.exit(f'could not find the sft model / label dataset in the run record: {json.dumps(stages["sft"])[:500]}')
    model_dir = os.path.join(out, 'sft')
    pairs_path = os.path.join(out, 'pairs.jsonl')
    alignflow(home, 'models', 'export', sft_model, '--out', model_dir)
    alignflow(home, 'datasets', 'export', label_ds, '--out', pairs_path)
    pairs = read_jsonl(pairs_path)
    eval_pairs = read_jsonl(os.path.join(ROOT, 'datasets/sentiment/eval_prefs.jsonl'))

    # --- 3. TRL
    import torch
    torch.set_num_threads(a.threads)
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer
    import trl
    tok = AutoTokenizer.from_pretrained(model_dir)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    trl_pairs = pairs[:a.pairs] if a.pairs else pairs
    keep = lambda ps: [{'prompt': p['prompt'], 'chosen': p['chosen'], 'rejected': p['rejected']} for p in ps]
    tokens_af = count_tokens(tok, pairs)
    tokens_trl = count_tokens(tok, trl_pairs)
    model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
    cfg = DPOConfig(output_dir=os.path.join(out, 'trl'), beta=0.1, loss_type=['sigmoid'], learning_rate=1e-4,
                    lr_scheduler_type='linear', per_device_train_batch_size=16, per_device_eval_batch_size=16,
                    num_train_epochs=1, max_length=MAX_LENGTH, precompute_ref_log_probs=True,
                    precompute_ref_batch_size=16, report_to=[], logging_steps=5, save_strategy='no',
                    use_cpu=True, seed=a.seed, dataloader_num_workers=0, disable_tqdm=True)
    t0 = time.time()
    trainer = DPOTrainer(model=model, args=cfg, train_dataset=Dataset.from_list(keep(trl_pairs)),
                         eval_dataset=Dataset.from_list(keep(eval_pairs)), processing_class=tok)
    t1 = time.time()
    result = trainer.train()
    t2 = time.time()
    ev = trainer.evaluate()
    trl_seconds = t2 - t0
    logs = [h for h in trainer.state.log_history if 'loss' in h]
    trl_side = {'side': 'trl', 'version': trl.__version__, 'torch': torch.__version__, 'threads': a.threads,
                'pairs': len(trl_pairs), 'init_s': round(t1 - t0, 2), 'train_s': round(t2 - t1, 2),
                'total_s': round(trl_seconds, 2), 'tokens': tokens_trl, 'tokens_per_s': round(tokens_trl / trl_seconds),
                'final_loss': logs[-1]['loss'] if logs else None, 'train_loss_mean': result.training_loss,
                'eval_rewards_accuracies': ev.get('eval_rewards/accuracies')}
    af_side = {'side': 'alignflow', 'backend': summary.get('backend'), 'pairs': len(pairs), 'dpo_stage_s': round(af_seconds, 2),
               'tokens': tokens_af, 'tokens_per_s': round(tokens_af / af_seconds), 'final_loss': last('loss'),
               'eval_rewards_accuracies': last('eval_rewards/accuracies'), 'demo_s': round(demo_s, 1), 'run': run_id, 'home': home}
    print(json.dumps(af_side))
    print(json.dumps(trl_side))
    print(json.dumps({'ratio_alignflow_over_trl_tokens_per_s': round(af_side['tokens_per_s'] / trl_side['tokens_per_s'], 3),
                      'loadavg': open('/proc/loadavg').read().split()[:3]}))


if __name__ == '__main__':
    main()
