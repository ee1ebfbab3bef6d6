"""The retrieval-episode format shared by teacher pretraining and the long-context eval tasks.

The teacher learns this one format inside its native window (a key stated early, asked for later);
the passkey / needle tasks ask the same question across longer haystacks. Every piece starts with a
space so that a byte-level BPE tokenises it identically wherever it is spliced into text.
"""
import random

_ADJECTIVES = (
    "amber azure bold brave bright calm crimson dusky eager faint gentle golden grey hollow ivory jade "
    "keen lucky misty noble olive pale quiet rapid royal rustic scarlet silent silver stern swift tawny "
    "velvet wild"
).split()
_NOUNS = (
    "badger bell cedar comet crane falcon fern harbor heron lantern maple meadow otter owl pebble pine "
    "raven river robin saddle sparrow stone thistle tower valley willow wolf wren"
).split()


def make_key(rng: random.Random) -> str:
    return f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"


def make_value(rng: random.Random, digits: int = 5) -> str:
    return "".join(rng.choice("0123456789") for _ in range(digits))


def needle_text(key: str, value: str) -> str:
    return f" The pass key of the {key} is {value}."


def question_text(key: str) -> str:
    return f" What is the pass key of the {key}? The pass key of the {key} is"


def answer_text(value: str) -> str:
    return f" {value}."
