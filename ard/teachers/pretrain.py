"""Teacher source `pretrain`: a small LLaMA trained here on the corpus, saved as a HF model directory.

The pretraining mix holds ordinary text windows and, for a share of them, synthetic retrieval episodes
(ard.episodes: keys stated early in the window, asked for at its end), so that the teacher has a
retrieval skill inside its native window that the long-context suites can then measure beyond it.
"""
import random
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ard import config as ard_config
from ard import episodes
from ard.data import load_tokenizer
from ard.io import atomic_dir, write_json
from ard.restore_methods.training import lr_factor
from ard.runtime import setup
from ard.teachers import TEACHER_INFO


def build_model_config(config, tokenizer):
    from transformers import LlamaConfig

    arch = config["teacher"]["architecture"]
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=arch["hidden_size"],
        intermediate_size=arch["intermediate_size"],
        num_hidden_layers=arch["num_hidden_layers"],
        num_attention_heads=arch["num_attention_heads"],
        num_key_value_heads=arch["num_key_value_heads"],
        max_position_embeddings=arch["max_position_embeddings"],
        rope_parameters={"rope_type": "default", "rope_theta": float(arch["rope_theta"])},
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )


class PretrainBatches:
    """Random windows of the training tokens; a share of them rewritten into retrieval episodes.

    Each batch also carries a mask of the answer tokens (the retrieval targets), so that training can
    report their loss: it stays at the no-copy level until the retrieval skill forms, then falls steeply.
    """

    max_needles = 3
    # An episode whose haystack would be shorter than this share of the window is replaced by plain text.
    min_haystack_fraction = 0.5

    def __init__(self, tokens, tokenizer, seq_len, retrieval_fraction, seed):
        self.tokens, self.seq_len, self.retrieval_fraction = tokens, seq_len, retrieval_fraction
        self.encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]
        self.rng = random.Random(seed)

    def window(self, length):
        start = self.rng.randrange(0, len(self.tokens) - length)
        return self.tokens[start : start + length].tolist()

    def plain(self):
        return self.window(self.seq_len + 1), [False] * (self.seq_len + 1)

    def episode(self):
        """Needles at random places in a haystack, then questions about some of them, each answered."""
        pairs = [(episodes.make_key(self.rng), episodes.make_value(self.rng)) for _ in range(self.rng.randint(1, self.max_needles))]
        pairs = list({key: (key, value) for key, value in pairs}.values())
        needles = [self.encode(episodes.needle_text(k, v)) for k, v in pairs]
        tail, tail_answers = [], []
        for key, value in self.rng.sample(pairs, self.rng.randint(1, len(pairs))):
            question, answer = self.encode(episodes.question_text(key)), self.encode(episodes.answer_text(value))
            tail += question + answer
            tail_answers += [False] * len(question) + [True] * len(answer)
        hay_length = self.seq_len + 1 - len(tail) - sum(map(len, needles))
        if hay_length < max(2, int(self.seq_len * self.min_haystack_fraction)):
            return self.plain()
        hay = self.window(hay_length)
        cut_points = sorted(self.rng.randrange(0, int(len(hay) * 0.8) + 1) for _ in needles)
        sequence, previous = [], 0
        for cut, needle in zip(cut_points, needles):
            sequence += hay[previous:cut] + needle
            previous = cut
        sequence += hay[previous:]
        return sequence + tail, [False] * len(sequence) + tail_answers

    def sample(self):
        return self.episode() if self.rng.random() < self.retrieval_fraction else self.plain()

    def next(self, batch_size):
        """(inputs, targets, answer mask over the targets), each [batch, seq_len]."""
        rows, answers = zip(*(self.sample() for _ in range(batch_size)))
        batch = torch.tensor(rows, dtype=torch.long)
        return batch[:, :-1], batch[:, 1:], torch.tensor(answers)[:, 1:]


def learning_rate(recipe, step):
    """Warm-up, then cosine decay to lr × min_lr_ratio at the last step (1: constant)."""
    return recipe["lr"] * lr_factor(step, recipe["max_steps"], recipe["warmup_steps"], recipe["min_lr_ratio"])


@torch.no_grad()
def passkey_accuracy(model, tokenizer, tokens, seq_len, n, seed, device):
    """Greedy retrieval accuracy on held-out single-needle episodes inside the native window."""
    sampler = PretrainBatches(tokens, tokenizer, seq_len, 1.0, seed)
    correct = 0
    for _ in range(n):
        key, value = episodes.make_key(sampler.rng), episodes.make_value(sampler.rng)
        needle = sampler.encode(episodes.needle_text(key, value))
        question = sampler.encode(episodes.question_text(key))
        hay_length = seq_len - len(needle) - len(question) - len(value) - 1
        if hay_length < 2:
            return None  # the native window is too short to hold an episode
        hay = sampler.window(hay_length)
        cut = sampler.rng.randrange(0, len(hay) // 2)
        prompt = torch.tensor([hay[:cut] + needle + hay[cut:] + question], device=device)
        output = model.generate(prompt, max_new_tokens=len(value) + 1, do_sample=False, pad_token_id=tokenizer.eos_token_id)
        correct += tokenizer.decode(output[0, prompt.shape[1] :]).strip().startswith(value)
    return correct / n


@torch.no_grad()
def validation_loss(model, tokens, seq_len, device, batches=8, batch_size=8):
    windows = np.lib.stride_tricks.sliding_window_view(tokens, seq_len + 1)[:: seq_len + 1]
    rows = torch.as_tensor(windows[: batches * batch_size].astype(np.int64))
    losses = [lm_loss(model, chunk[:, :-1].to(device), chunk[:, 1:].to(device)) for chunk in rows.split(batch_size)]
    return float(torch.stack(losses).mean())


def token_losses(model, inputs, targets):
    logits = model(input_ids=inputs).logits
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), reduction="none").view_as(targets)


def lm_loss(model, inputs, targets):
    return token_losses(model, inputs, targets).mean()


def build(config, data_dir, out):
    from transformers import LlamaForCausalLM

    if not (Path(data_dir) / "tokens" / "train.npy").is_file():
        raise FileNotFoundError(f"no data stage output under {data_dir} (run `ard data` first)")
    device = setup(config)
    tokenizer = load_tokenizer(Path(data_dir) / "tokenizer")
    train_tokens = np.load(Path(data_dir) / "tokens" / "train.npy")
    val_tokens = np.load(Path(data_dir) / "tokens" / "val.npy")
    recipe = config["teacher"]["pretrain"]
    seq_len = ard_config.native_context(config)
    model = LlamaForCausalLM(build_model_config(config, tokenizer)).to(device)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": recipe["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
        lr=recipe["lr"], betas=(0.9, 0.95),
    )
    batches = PretrainBatches(train_tokens, tokenizer, seq_len, recipe["retrieval_fraction"], config["seed"])
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=recipe["dtype"] == "bfloat16")
    deadline = time.monotonic() + 60 * recipe["max_minutes"]
    started, step, loss, answer_losses = time.monotonic(), 0, float("nan"), []
    # Mean loss on episode answer tokens over the last 20 steps that had one (None: no episodes yet).
    recent_answer_loss = lambda: float(np.mean(answer_losses[-20:])) if answer_losses else None
    progress = tqdm(total=recipe["max_steps"], desc="pretrain teacher", unit="step")
    model.train()
    while step < recipe["max_steps"] and time.monotonic() < deadline:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(recipe, step)
        inputs, targets, answers = batches.next(recipe["batch_size"])
        with autocast:
            losses = token_losses(model, inputs.to(device), targets.to(device))
        loss_tensor, answers = losses.mean(), answers.to(device)
        optimizer.zero_grad(set_to_none=True)
        loss_tensor.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step, loss = step + 1, float(loss_tensor)
        if answers.any():
            answer_losses.append(float(losses.detach()[answers].mean()))
        progress.update(1)
        progress.set_postfix(loss=f"{loss:.3f}", answer_loss=f"{recent_answer_loss():.3f}" if answer_losses else "-")
    progress.close()
    wall = time.monotonic() - started
    model.eval()
    info = {
        "source": "pretrain",
        "steps": step,
        "planned_steps": recipe["max_steps"],
        "stopped_by_time_budget": step < recipe["max_steps"],
        "train_tokens": step * recipe["batch_size"] * seq_len,
        "wall_seconds": round(wall, 1),
        "final_train_loss": loss,
        "final_answer_loss": recent_answer_loss(),
        "val_loss": validation_loss(model, val_tokens, seq_len, device),
        "val_passkey_accuracy": passkey_accuracy(model, tokenizer, val_tokens, seq_len, 50, config["seed"] + 1, device),
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    print(info)
    with atomic_dir(out) as tmp:
        model.to(torch.float32).save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_json(tmp / TEACHER_INFO, info)
