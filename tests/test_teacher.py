"""The teacher's pretraining: batches (retrieval episodes, their answer mask, determinism) and its schedule."""
import numpy as np
import pytest
import torch

from ard import config as ard_config
from ard import episodes
from ard.teachers.pretrain import PretrainBatches, learning_rate
from eval_fixtures.tiny import _documents, build_tokenizer

SEQ_LEN = 128


@pytest.fixture(scope="module")
def corpus():
    tokenizer = build_tokenizer()
    text = "".join(doc["text"] for doc in _documents())
    return np.asarray(tokenizer(text)["input_ids"], dtype=np.int32), tokenizer


def test_answer_mask_marks_exactly_the_answers(corpus):
    tokens, tokenizer = corpus
    batches = PretrainBatches(tokens, tokenizer, SEQ_LEN, retrieval_fraction=1.0, seed=3)
    for _ in range(20):
        sequence, answers = batches.episode()
        assert len(sequence) == len(answers) == SEQ_LEN + 1
        if not any(answers):
            continue  # too short a window for this draw: plain text, nothing marked
        text = tokenizer.decode(sequence)
        answered = tokenizer.decode([t for t, a in zip(sequence, answers) if a])
        values = answered.split()
        assert values and all(len(v) == 6 and v[:5].isdigit() and v.endswith(".") for v in values)
        for value in values:  # each answer repeats a needle stated earlier in the window
            needle_end = episodes.needle_text("", value[:5]).split(" the ")[-1]
            assert text.count(needle_end) >= 2 and text.index(needle_end) < text.rindex(episodes.answer_text(value[:5]))


def test_batches_align_mask_with_targets(corpus):
    tokens, tokenizer = corpus
    inputs, targets, answers = PretrainBatches(tokens, tokenizer, SEQ_LEN, 1.0, seed=0).next(8)
    assert inputs.shape == targets.shape == answers.shape == (8, SEQ_LEN) and answers.dtype == torch.bool
    assert torch.equal(inputs[:, 1:], targets[:, :-1])
    assert answers.any()
    digits = {tokenizer.convert_tokens_to_ids(d) for d in "0123456789"}
    assert set(targets[answers].tolist()) & digits


def test_same_seed_same_batches_and_no_episodes_no_answers(corpus):
    tokens, tokenizer = corpus
    first, second = (PretrainBatches(tokens, tokenizer, SEQ_LEN, 0.5, seed=7).next(16) for _ in range(2))
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    other = PretrainBatches(tokens, tokenizer, SEQ_LEN, 0.5, seed=8).next(16)
    assert not torch.equal(first[0], other[0])
    _, _, answers = PretrainBatches(tokens, tokenizer, SEQ_LEN, 0.0, seed=7).next(16)
    assert not answers.any()


def test_learning_rate_decays_by_default_and_min_ratio_one_keeps_it_constant():
    recipe = ard_config.load("config/default.yaml")["teacher"]["pretrain"]
    assert recipe["min_lr_ratio"] == 0.1  # the schema's default
    last = recipe["max_steps"] - 1
    assert learning_rate(recipe, 0) == pytest.approx(recipe["lr"] / recipe["warmup_steps"])
    assert learning_rate(recipe, recipe["warmup_steps"]) == pytest.approx(recipe["lr"])
    assert learning_rate(recipe, last) == pytest.approx(0.1 * recipe["lr"])
    constant = dict(recipe, min_lr_ratio=1.0)
    rates = [learning_rate(constant, step) for step in range(recipe["warmup_steps"], recipe["max_steps"])]
    assert rates == pytest.approx([recipe["lr"]] * len(rates))
