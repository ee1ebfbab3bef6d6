"""The teacher-retrieval experiment behind docs/teacher-retrieval.md (run on one GPU, ~2.5 min per sweep).

Trains the embedded default's teacher shape (hidden 128, 4 heads / 2 kv heads, native 256, batch 16) under
many pretraining curricula, 16 at a time, and probes each for the retrieval skill: greedy pass-key accuracy
(exact and first digit) on held-out single-needle episodes, the loss on a repeated corpus span (an
induction probe) and the mean loss on answer tokens. Needs results/data from `ard data`.
    PYTHONPATH=. python scripts/experiments/retrieval_sweep.py SWEEP OUT.jsonl    # SWEEP: one of SWEEPS
Curriculum knobs (fractions of the batch): episodes (ard.teacher's episode, up to `needles` needles),
repeat (a span repeated; random=True: random vocabulary tokens, "digits": random digits), pure (a window
of random tokens, then the same again), dense (back-to-back short single-needle episodes, gaps up to
`gap`); w weights the answer tokens in the loss; untied unties the embeddings; words uses two-word
values instead of five digits.
"""
import json, sys, time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
import numpy as np
import torch

from ard import episodes, teacher
from ard.data import load_tokenizer
from ard.evaluation.generators import NOISE
from ard.restore_methods.training import lr_factor

DATA = Path("results/data")


class Batches(teacher.PretrainBatches):
    def __init__(self, *a, repeat_fraction=0.0, max_needles=3, random_tokens=False, pure_fraction=0.0, answer_weight=1.0, dense_fraction=0.0, gap=16, **k):
        super().__init__(*a, **k)
        self.repeat_fraction, self.max_needles = repeat_fraction, max_needles
        self.min_haystack_fraction = 8 / self.seq_len  # keep episodes down to an 8-token haystack
        self.random_tokens = random_tokens
        self.pure_fraction, self.answer_weight = pure_fraction, answer_weight
        self.dense_fraction, self.gap = dense_fraction, gap
        self.digit_tokens = [self.encode(d)[0] for d in '0123456789']
        self.noise_fraction = 0.0
        self.corpus_tokens = self.tokens

    def noise_episode(self):
        """An episode whose haystack is RULER's repeated noise sentences instead of corpus text."""
        self.tokens = noise_tokens(self.encode, self.seq_len)
        try:
            return self.episode()
        finally:
            self.tokens = self.corpus_tokens

    def random_repeat(self):
        n = self.rng.randint(8, self.seq_len // 2)
        alphabet = self.digit_tokens if self.random_tokens == "digits" else range(100, 4000)
        span = [self.rng.choice(alphabet) for _ in range(n)]
        hay = self.window(self.seq_len + 1 - 2 * n)
        return (span + hay[: len(hay) // 2] + span + hay[len(hay) // 2:])[: self.seq_len + 1]

    def repeat(self):
        if self.random_tokens:
            return self.random_repeat()
        # A corpus span then the same span again: the second copy is predictable only by copying.
        n = self.rng.randint(8, self.seq_len // 4)
        span = self.window(n)
        hay = self.window(self.seq_len + 1 - 2 * n)
        cut = self.rng.randrange(0, len(hay) // 2 + 1)
        cut2 = self.rng.randrange(cut, len(hay) + 1)
        return (hay[:cut] + span + hay[cut:cut2] + span + hay[cut2:])[: self.seq_len + 1]

    def dense(self):
        """Back-to-back mini-episodes: hay, one needle, hay, its question and answer; answers marked."""
        sequence, marks = [], []  # marks: 1 on answer tokens
        while True:
            key, value = episodes.make_key(self.rng), episodes.make_value(self.rng)
            needle = self.encode(episodes.needle_text(key, value))
            q, a = self.encode(episodes.question_text(key)), self.encode(episodes.answer_text(value))
            h1, h2 = self.rng.randint(0, self.gap), self.rng.randint(0, self.gap)
            part = self.window(h1) + needle + self.window(h2) + q + a if h1 and h2 else needle + q + a
            if len(sequence) + len(part) > self.seq_len + 1:
                break
            sequence += part
            marks += [0] * (len(part) - len(a)) + [1] * len(a)
        rest = self.seq_len + 1 - len(sequence)
        return (sequence + self.window(rest) if rest else sequence), marks + [0] * rest

    def next(self, batch_size):
        """Each row's kind drawn by the shares, in this order; the rest is plain text."""
        kinds = [(self.noise_fraction, "noise"), (self.pure_fraction, "pure"), (self.dense_fraction, "dense"),
                 (self.retrieval_fraction, "episode"), (self.repeat_fraction, "repeat")]
        rows, weights = [], []
        for _ in range(batch_size):
            u, bound, kind = self.rng.random(), 0.0, "plain"
            for share, name in kinds:
                bound += share
                if u < bound:
                    kind = name
                    break
            w = [1.0] * (self.seq_len + 1)
            if kind == "pure":
                span = [self.rng.randrange(100, 4000) for _ in range((self.seq_len + 1) // 2 + 1)]
                rows.append((span + span)[: self.seq_len + 1])
            elif kind in ("noise", "dense", "episode"):
                sequence, answers = {"noise": self.noise_episode, "dense": self.dense, "episode": self.episode}[kind]()
                rows.append(sequence)
                w = [self.answer_weight if answer else 1.0 for answer in answers]
            elif kind == "repeat":
                rows.append(self.repeat())
            else:
                rows.append(self.window(self.seq_len + 1))
            weights.append(w)
        b = torch.tensor(rows, dtype=torch.long)
        return b[:, :-1], b[:, 1:], torch.tensor(weights)[:, 1:]


# Concrete nouns; a "word" value is one of those that the tokenizer keeps as one token.
VALUE_WORDS = ("bread lion gold silver sword crown horse rose iron stone lamb wine fire water bird tree ship "
               "door king queen child apple wolf bear lamp ring seed salt honey milk cloud rain snow wind moon "
               "star book shield spear arrow bow oak vine fig olive river sea hill field house tent gate wall "
               "coin cup bowl bone blood eye hand foot heart head mouth tongue").split()


def set_values(kind, tok):
    """Replace the episode value maker: five digits (the default), one digit, or one single-token word."""
    if kind == "digit1":
        episodes.make_value = lambda rng, digits=5: rng.choice("0123456789")
    elif kind == "word1":
        words = [w for w in VALUE_WORDS if len(tok(" " + w, add_special_tokens=False)["input_ids"]) == 1]
        episodes.make_value = lambda rng, digits=5: rng.choice(words)


def noise_tokens(encode, seq_len):
    return np.array(encode("".join(NOISE) * (seq_len // 8 + 4)))


@torch.no_grad()
def passkey_probe(model, tok, val, n, device, seq_len=256, choices=4):
    """Single needle in the first half of a native window: greedy (exact, first character) accuracy and the
    share of episodes where the true value has the highest likelihood among `choices` candidates."""
    sampler = teacher.PretrainBatches(val, tok, seq_len, 1.0, 11)
    exact = first = chosen = 0
    for _ in range(n):
        key = episodes.make_key(sampler.rng)
        values = []
        while len(values) < choices:
            v = episodes.make_value(sampler.rng)
            values += [v] if v not in values else []
        value = values[0]
        needle = sampler.encode(episodes.needle_text(key, value)); question = sampler.encode(episodes.question_text(key))
        hay = sampler.window(seq_len - len(needle) - len(question) - 7)
        cut = sampler.rng.randrange(0, len(hay) // 2)
        context = hay[:cut] + needle + hay[cut:] + question
        prompt = torch.tensor([context], device=device)
        out = model.generate(prompt, max_new_tokens=7, do_sample=False, pad_token_id=tok.eos_token_id)
        text = tok.decode(out[0, prompt.shape[1]:]).strip()
        exact += text.startswith(value); first += text[:1] == value[0]
        scores = []
        for v in values:
            answer = sampler.encode(episodes.answer_text(v))
            x = torch.tensor([context + answer], device=device)
            lp = torch.log_softmax(model(x).logits[0, len(context) - 1 : -1].float(), -1)
            scores.append(float(lp.gather(-1, x[0, len(context):, None]).sum()))
        chosen += int(np.argmax(scores) == 0)
    return exact / n, first / n, chosen / n


@torch.no_grad()
def copy_loss(model, train, tok, device):
    """Mean loss on the second copy of a 64-token corpus span (a pure induction probe)."""
    rng = np.random.default_rng(5)
    rows = []
    for _ in range(16):
        s = rng.integers(0, len(train) - 200); t = rng.integers(0, len(train) - 200)
        rows.append(list(train[s:s+64]) + list(train[t:t+64]) + list(train[s:s+64]))
    x = torch.tensor(np.array(rows, dtype=np.int64), device=device)
    lp = torch.log_softmax(model(x).logits[:, :-1].float(), -1)
    nll = -lp.gather(-1, x[:, 1:, None])[..., 0]
    return round(float(nll[:, 129:].mean()), 3), round(float(nll[:, 1:64].mean()), 3)


def run(spec):
    torch.manual_seed(spec.get("seed", 0))
    torch.set_num_threads(1)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tok = load_tokenizer(DATA / "tokenizer")
    train = np.load(DATA / "tokens" / "train.npy"); val = np.load(DATA / "tokens" / "val.npy")
    native, batch = spec.get("native", 256), spec.get("batch", 16)
    set_values(spec.get("values", "digits5"), tok)
    arch = dict(hidden_size=spec.get("hidden", 128), num_hidden_layers=spec.get("layers", 4), num_attention_heads=spec.get("heads", 4),
                num_key_value_heads=spec.get("heads", 4) // 2, intermediate_size=3 * spec.get("hidden", 128), max_position_embeddings=native, rope_theta=10000.0)
    config = {"teacher": {"architecture": arch}}
    from transformers import LlamaForCausalLM
    model_config = teacher.build_model_config(config, tok)
    model_config.tie_word_embeddings = not spec.get("untied", False)
    if spec.get("words"):
        vocabulary = "apple bread candle daisy ember fiddle garnet hammer iris jasper kettle lemon marble needle orchid pepper quartz ribbon saffron tulip umber violet walnut yarrow zinnia anchor basket copper dragon engine".split()
        episodes.make_value = lambda rng, digits=5: f"{rng.choice(vocabulary)} {rng.choice(vocabulary)}"
    model = LlamaForCausalLM(model_config).to(device)
    lr, steps = spec["lr"], spec["steps"]
    decay = [p for p in model.parameters() if p.ndim >= 2]; nod = [p for p in model.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": nod, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.95))
    b = Batches(train, tok, native, spec["episodes"], spec.get("seed", 0), repeat_fraction=spec["repeat"], max_needles=spec["needles"], random_tokens=spec.get("random", False), pure_fraction=spec.get("pure", 0.0), answer_weight=spec.get("w", 1.0), dense_fraction=spec.get("dense", 0.0), gap=spec.get("gap", 16))
    b.min_haystack_fraction = spec.get("min_hay", b.min_haystack_fraction)
    b.noise_fraction = spec.get("noise", 0.0)
    t0 = time.time(); curve = {}; answer_nll = []
    model.train()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr * (lr_factor(step, steps, 20, min_ratio=0.1) if not spec.get("constant") else min(1, (step + 1) / 20))
        if time.time() - t0 > spec.get("max_seconds", 1e9):
            break
        x, y, wt = b.next(batch)
        logits = model(input_ids=x.to(device)).logits
        nll = torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), y.to(device).flatten(), reduction="none")
        wt = wt.to(device).flatten()
        loss = (nll * wt).sum() / wt.sum()
        answer = wt > 1
        if answer.any():
            answer_nll.append(float(nll[answer].mean()))
        opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); opt.step()
        if (step + 1) in spec.get("probe_at", ()):
            model.eval(); curve[step + 1] = (passkey_probe(model, tok, val, 40, device, native), copy_loss(model, val, tok, device), round(float(loss), 3), round(float(np.mean(answer_nll[-50:])) if answer_nll else -1, 3))
            print(json.dumps({"probe": step + 1, **{k: spec.get(k) for k in ("name",)}, "at": curve[step + 1]}), flush=True)
            model.train()
    model.eval()
    noise = noise_tokens(lambda text: tok(text, add_special_tokens=False)["input_ids"], native)
    res = dict(spec, probe_at=None, curve=curve, steps_done=step + 1, acc=passkey_probe(model, tok, val, 100, device, native),
               noise_acc=passkey_probe(model, tok, noise, 100, device, native),
               val_loss=round(teacher.validation_loss(model, val, native, device), 3), sec=round(time.time() - t0, 1))
    print(json.dumps(res), flush=True)
    return res


def sweeps():
    P = (150, 300, 450, 600, 900)
    plain = dict(steps=1200, probe_at=P, constant=True, lr=2e-3, repeat=0.0, needles=1, episodes=0.0)
    dense = dict(plain, w=1.0001, dense=0.5, gap=16)
    table = {"mix": [], "copy": [], "weights": [], "dense": [], "embeddings": []}
    for layers in (4, 2):
        table["mix"] += [
            dict(plain, episodes=0.5, layers=layers),
            dict(plain, episodes=0.5, repeat=0.25, random=True, layers=layers),
            dict(plain, episodes=0.5, repeat=0.25, random="digits", layers=layers),
            dict(plain, episodes=0.9, layers=layers),
            dict(plain, episodes=0.4, repeat=0.4, needles=2, random=True, layers=layers),
            dict(plain, episodes=0.5, repeat=0.25, random=True, layers=layers, lr=5e-3),
            dict(plain, episodes=0.5, repeat=0.25, random=True, layers=layers, lr=1e-3),
            dict(plain, episodes=0.25, repeat=0.25, needles=3, random=True, layers=layers),
        ]
        table["weights"] += [
            dict(plain, episodes=0.5, pure=0.25, layers=layers),
            dict(plain, episodes=0.4, pure=0.5, layers=layers),
            dict(plain, episodes=0.5, w=10, layers=layers),
            dict(plain, episodes=0.5, w=30, layers=layers),
            dict(plain, episodes=0.4, pure=0.25, w=10, layers=layers),
            dict(plain, episodes=0.4, pure=0.25, w=10, layers=layers, lr=1e-3),
            dict(plain, episodes=0.25, pure=0.25, w=10, needles=3, layers=layers),
            dict(plain, episodes=0.8, w=10, layers=layers),
        ]
        table["dense"] += [
            dict(dense, layers=layers),
            dict(dense, gap=48, layers=layers),
            dict(dense, w=5, layers=layers),
            dict(dense, dense=0.3, episodes=0.2, gap=32, layers=layers),
            dict(dense, dense=0.8, layers=layers),
            dict(dense, layers=layers, lr=1e-3),
            dict(dense, layers=layers, lr=4e-3),
            dict(dense, dense=0.4, pure=0.2, layers=layers),
        ]
        table["embeddings"] += [
            dict(dense, untied=True, layers=layers),
            dict(dense, untied=True, dense=0.3, episodes=0.2, gap=32, layers=layers),
            dict(dense, untied=True, dense=0.0, episodes=0.5, layers=layers),
            dict(dense, words=True, layers=layers),
            dict(dense, words=True, untied=True, layers=layers),
            dict(dense, words=True, dense=0.3, episodes=0.2, gap=32, layers=layers),
            dict(dense, untied=True, layers=layers, lr=1e-3),
            dict(dense, untied=True, layers=layers, pure=0.2, dense=0.4),
        ]
    long = dict(steps=3000, probe_at=tuple(range(250, 3001, 250)), constant=True, lr=1e-3, needles=3)
    table["copy"] = [
        dict(long, episodes=0.0, repeat=1.0, needles=1, random=True, layers=2, constant=False),
        dict(long, episodes=0.0, repeat=1.0, needles=1, random=True, constant=False),
        dict(long, episodes=0.25, repeat=0.5, random=True),
        dict(long, episodes=0.25, repeat=0.5, random=True, lr=3e-3),
        dict(long, episodes=0.25, repeat=0.5),
        dict(long, episodes=0.5, repeat=0.0),
        dict(long, episodes=0.25, repeat=0.0, lr=3e-3, hidden=256),
        dict(long, episodes=0.25, repeat=0.5, random=True, hidden=256),
    ]
    budget = dict(steps=8000, probe_at=tuple(range(1000, 8001, 1000)), constant=True, lr=2e-3, w=1.0001, episodes=0.0, repeat=0.0)
    table["budget"] = [
        dict(budget, name="h128-4L-ep25-n3", episodes=0.25, needles=3),
        dict(budget, name="h128-4L-ep50-n1", episodes=0.5, needles=1),
        dict(budget, name="h128-4L-dense50", dense=0.5, gap=16, needles=1),
        dict(budget, name="h256-4L-ep25-n3", episodes=0.25, needles=3, hidden=256),
        dict(budget, name="h256-4L-ep50-n1", episodes=0.5, needles=1, hidden=256),
        dict(budget, name="h256-4L-dense50", dense=0.5, gap=16, needles=1, hidden=256),
        dict(budget, name="h128-2L-ep50-n1", episodes=0.5, needles=1, layers=2),
        dict(budget, name="h256-4L-ep25-rep25", episodes=0.25, needles=3, repeat=0.25, hidden=256),
    ]
    # Candidate GPU-demonstration teachers, trained past the phase change (stopped at 7 minutes).
    demo = dict(budget, steps=9000, probe_at=tuple(range(1000, 9001, 1000)), episodes=0.25, needles=3, max_seconds=420, min_hay=0.5)
    table["demo"] = [
        dict(demo, name="h128-4L-n256-seed1", seed=1),
        dict(demo, name="h128-4L-n256-seed2", seed=2),
        dict(demo, name="h256-4L-n512", hidden=256, native=512, lr=1e-3),
        dict(demo, name="h256-4L-n512-b32", hidden=256, native=512, batch=32, lr=1e-3),
        dict(demo, name="h512-8L-n512-b32", hidden=512, layers=8, heads=8, native=512, batch=32, lr=1e-3, steps=6000),
        dict(demo, name="h512-8L-n512-b32-ep50", hidden=512, layers=8, heads=8, native=512, batch=32, lr=1e-3, steps=6000, episodes=0.5),
    ]
    # The CPU default's budget (150-250 steps of its recipe: lr 3e-3, cosine) with easier value formats.
    cpu = dict(steps=150, probe_at=(), constant=False, lr=3e-3, repeat=0.0, needles=3, episodes=0.25, w=1.0001, min_hay=0.5)
    table["cpu"] = [
        dict(cpu, name="digits5-ep25"),
        dict(cpu, name="digits5-ep50", episodes=0.5),
        dict(cpu, name="word1-ep25", values="word1"),
        dict(cpu, name="word1-ep50", values="word1", episodes=0.5),
        dict(cpu, name="word1-ep50-n1", values="word1", episodes=0.5, needles=1),
        dict(cpu, name="word1-ep75", values="word1", episodes=0.75),
        dict(cpu, name="word1-ep50-lr6e-3", values="word1", episodes=0.5, lr=6e-3),
        dict(cpu, name="word1-ep50-2L", values="word1", episodes=0.5, layers=2),
        dict(cpu, name="digit1-ep50", values="digit1", episodes=0.5),
        dict(cpu, name="digit1-ep50-n1", values="digit1", episodes=0.5, needles=1),
        dict(cpu, name="word1-ep50-250", values="word1", episodes=0.5, steps=250),
        dict(cpu, name="digits5-ep50-250", episodes=0.5, steps=250),
        dict(cpu, name="word1-ep25-250", values="word1", steps=250),
        dict(cpu, name="word1-ep50-600", values="word1", episodes=0.5, steps=600),
    ]
    # Episodes in RULER's noise haystack (what ard_niah_single_1 asks), at the CPU default's budget.
    noise = dict(cpu, episodes=0.0, noise=0.5)
    table["noise"] = [
        dict(noise, name="noise25", noise=0.25),
        dict(noise, name="noise50"),
        dict(noise, name="noise50-n1", needles=1),
        dict(noise, name="noise75", noise=0.75),
        dict(noise, name="noise50-word1", values="word1"),
        dict(noise, name="noise50-digit1", values="digit1"),
        dict(noise, name="noise50-250", steps=250),
        dict(noise, name="noise50-lr6e-3", lr=6e-3),
        dict(noise, name="noise50-n1-250", needles=1, steps=250),
    ]
    return table


if __name__ == "__main__":
    specs = sweeps()[sys.argv[1]]
    torch.multiprocessing.set_start_method("spawn")
    with ProcessPoolExecutor(len(specs)) as pool:
        results = list(pool.map(run, specs))
    Path(sys.argv[2]).write_text("\n".join(json.dumps(r) for r in results))
