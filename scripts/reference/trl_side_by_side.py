"""Trains TRL 1.13's DPOTrainer and RewardTrainer on a committed tiny GPT-2 and 32 preference pairs
and writes their per-step figures, for test/ml/trl-side-by-side.test.ts to hold alignflow's DPO and
reward stages against (issue 12: "keep that as a committed check").

    /work/venv/bin/python scripts/reference/trl_side_by_side.py     # rewrites test/fixtures/trl-reference/

Model: test/fixtures/gpt2-reference/model-fp32 (GPT2LMHeadModel, 2 layers, vocab 377, its tokenizer.json
through PreTrainedTokenizerFast, EOS = pad = <|endoftext|>). Data: pairs.jsonl written here (explicit
prompt, string completions), chosen so that every prompt/completion boundary is clean: TRL tokenizes
prompt+completion together and cuts at the prompt's length, alignflow tokenizes them separately
(docs/preference.md), and on these records both give the same ids (checked below, the run stops if not).

Settings shared with the test (the test reads them from the JSON, so there is one source):
fp32 on CPU, dropout off (TRL's disable_dropout), sequential sampler (alignflow's `shuffle: false`),
AdamW (adamw_torch; decay on everything but biases and LayerNorm), linear schedule with warm-up,
max_grad_norm 1 (grad_norm logged before clipping), 2 epochs of 32 pairs. Cases: plain (batch 4),
grad_accum (batch 2 × 2 micro-batches), weight_decay (batch 4, λ 0.1). DPO: sigmoid loss, β 0.1,
reference = a frozen copy of the start model. Reward: GPT2ForSequenceClassification whose score head
is alignflow's initial head for the stage seed (scripts/reference/reward-head-init.ts prints it: tfjs's
seeded normal cannot be drawn in torch), so both start from the same weights.

Per step the JSON has what TRL logs: loss, grad_norm, learning_rate and the trainer's metrics
(DPO: rewards/chosen|rejected|accuracies|margins, logps/chosen|rejected; reward: accuracy, margin,
min/mean/max_reward), each averaged over the step's micro-batches as TRL does.
"""
import json
import os
import subprocess
import sys

import torch
import transformers
import trl
from datasets import Dataset
from transformers import AutoModelForCausalLM, GPT2ForSequenceClassification, PreTrainedTokenizerFast, TrainerCallback
from trl import DPOConfig, DPOTrainer, RewardConfig, RewardTrainer

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
MODEL = os.path.join(REPO, "test", "fixtures", "gpt2-reference", "model-fp32")
OUT = os.path.join(REPO, "test", "fixtures", "trl-reference")

COMMON = {"epochs": 2, "warmup_steps": 2, "schedule": "linear", "max_grad_norm": 1.0, "max_length": 128, "adam_beta1": 0.9, "adam_beta2": 0.999, "adam_epsilon": 1e-8}
CASES = {
    "plain": {"batch_size": 4, "grad_accum": 1, "weight_decay": 0.0},
    "grad_accum": {"batch_size": 2, "grad_accum": 2, "weight_decay": 0.0},
    "weight_decay": {"batch_size": 4, "grad_accum": 1, "weight_decay": 0.1},
}
DPO = {"beta": 0.1, "loss": "sigmoid", "lr": 5e-3}
REWARD = {"lr": 5e-3, "seed": 7}

# Prompts end in ":" or "?", completions start with a space: no BPE merge across the boundary.
SUBJECTS = ["the sky", "grass", "snow", "a lemon", "the sea", "coal", "a tomato", "milk"]
COLOURS = ["blue", "green", "white", "yellow", "blue", "black", "red", "white"]
WRONG = ["purple", "orange", "pink", "grey", "brown", "silver", "teal", "gold"]


def make_pairs():
    rows = []
    for i, (s, c, w) in enumerate(zip(SUBJECTS, COLOURS, WRONG)):
        rows.append({"prompt": f"Q: What colour is {s}?\nA:", "chosen": f" {c}.", "rejected": f" {w}."})
        rows.append({"prompt": f"Name the colour of {s}:", "chosen": f" It is {c}.", "rejected": f" Maybe {w}, or not."})
        a, b = i + 2, (3 * i) % 7 + 1
        rows.append({"prompt": f"Q: {a} + {b} =", "chosen": f" {a + b}", "rejected": f" {a + b + 1}"})
        rows.append({"prompt": f"Say something kind about {s}:", "chosen": f" I like {s}, thank you!", "rejected": " No."})
    return rows


def tokenizer():
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(MODEL, "tokenizer.json"), eos_token="<|endoftext|>", bos_token="<|endoftext|>", unk_token="<|endoftext|>", model_max_length=128)
    tok.pad_token = tok.eos_token  # what both trainers do when the tokenizer has none
    return tok


def check_boundaries(tok, rows):
    """TRL's ids (prompt+completion tokenized together, cut at the prompt's length) == alignflow's (separately)."""
    eos = tok.eos_token
    for i, r in enumerate(rows):
        p = tok(r["prompt"], add_special_tokens=False)["input_ids"]
        for k in ("chosen", "rejected"):
            joint = tok(r["prompt"] + r[k] + eos, add_special_tokens=False)["input_ids"]
            apart = p + tok(r[k] + eos, add_special_tokens=False)["input_ids"]
            if joint != apart:
                sys.exit(f"record {i} {k}: prompt/completion boundary merges a token; TRL and alignflow would differ")


class Recorder(TrainerCallback):
    def __init__(self):
        self.steps = []

    def on_log(self, args, state, control, logs=None, **kw):
        if logs and "loss" in logs and "train_runtime" not in logs:
            self.steps.append({"step": state.global_step, **{k: float(v) for k, v in logs.items()}})


def training_args(cls, case, lr, extra):
    c = {**COMMON, **CASES[case]}
    return cls(
        output_dir=os.path.join("/tmp", "trl-side-by-side"),
        per_device_train_batch_size=c["batch_size"],
        gradient_accumulation_steps=c["grad_accum"],
        num_train_epochs=c["epochs"],
        learning_rate=lr,
        lr_scheduler_type=c["schedule"],
        warmup_steps=c["warmup_steps"],
        weight_decay=c["weight_decay"],
        adam_beta1=c["adam_beta1"],
        adam_beta2=c["adam_beta2"],
        adam_epsilon=c["adam_epsilon"],
        max_grad_norm=c["max_grad_norm"],
        max_length=c["max_length"],
        optim="adamw_torch",
        train_sampling_strategy="sequential",
        logging_steps=1,
        save_strategy="no",
        eval_strategy="no",
        report_to=[],
        use_cpu=True,
        bf16=False,
        fp16=False,
        disable_dropout=True,
        seed=0,
        data_seed=0,
        **extra,
    )


def load_lm():
    return AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float32, attn_implementation="eager")


def run_dpo(case, data, tok):
    args = training_args(DPOConfig, case, DPO["lr"], {"beta": DPO["beta"], "loss_type": [DPO["loss"]]})
    rec = Recorder()
    ref = load_lm().eval()
    trainer = DPOTrainer(model=load_lm(), ref_model=ref, args=args, train_dataset=data, processing_class=tok, callbacks=[rec])
    trainer.train()
    return rec.steps


def run_reward(case, data, tok, head):
    args = training_args(RewardConfig, case, REWARD["lr"], {})
    model = GPT2ForSequenceClassification.from_pretrained(MODEL, num_labels=1, dtype=torch.float32, attn_implementation="eager")
    with torch.no_grad():
        model.score.weight.copy_(torch.tensor([head["score"]], dtype=torch.float32))
    model.config.pad_token_id = tok.pad_token_id
    rec = Recorder()
    trainer = RewardTrainer(model=model, args=args, train_dataset=data, processing_class=tok, callbacks=[rec])
    trainer.train()
    return rec.steps


def reward_head():
    out = subprocess.run(["npx", "tsx", "scripts/reference/reward-head-init.ts", MODEL, str(REWARD["seed"])], cwd=REPO, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    os.makedirs(OUT, exist_ok=True)
    rows = make_pairs()
    with open(os.path.join(OUT, "pairs.jsonl"), "w") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    tok = tokenizer()
    check_boundaries(tok, rows)
    head = reward_head()
    versions = {"trl": trl.__version__, "transformers": transformers.__version__, "torch": torch.__version__}
    for stage in ("dpo", "reward"):
        result = {"stage": stage, "versions": versions, "model": "gpt2-reference/model-fp32", "data": "pairs.jsonl", "common": COMMON, "cases": {}}
        result.update({"dpo": DPO} if stage == "dpo" else {"reward": {**REWARD, "score_init": head["score"]}})
        for case in CASES:
            data = Dataset.from_list(rows)
            steps = run_dpo(case, data, tok) if stage == "dpo" else run_reward(case, data, tok, head)
            result["cases"][case] = {**CASES[case], "steps": steps}
            print(f"{stage}/{case}: {len(steps)} steps, loss {steps[0]['loss']:.6f} → {steps[-1]['loss']:.6f}, grad_norm {steps[0]['grad_norm']:.4f} → {steps[-1]['grad_norm']:.4f}")
        with open(os.path.join(OUT, f"{stage}.json"), "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
