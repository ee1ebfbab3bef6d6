"""Per-sample generators of the local tasks' jsonl rows, named by each task YAML's `metadata.generator`.

Every generator is `gen(ctx, rng, **params) -> dict` (params: the rest of the task's metadata). `rng` is
seeded by (seed, task, sample index) only, so sample i asks the same question at every context length
(a paired design, as RULER's) and does not change when the sample count does. Prompts are sized with the
data stage's tokenizer so that prompt + generated tokens fit the context length.
"""
import random
import re
from dataclasses import dataclass

from ard import episodes
from ard.evaluation.corpus import Corpus, fit, split_segments

# RULER's noise haystack, as segments (sentences with their trailing separators).
NOISE = ["The grass is green. ", "The sky is blue. ", "The sun is yellow. ", "Here we go. ", "There and back again.\n"]


class TooShort(ValueError):
    """A context length that cannot hold even the fixed parts of a task's prompt."""


@dataclass(frozen=True)
class Context:
    corpus: Corpus
    native: int
    length: int | None  # this file's context length; None for short-text tasks
    min_length: int | None  # the suite's shortest context length
    max_length: int | None  # the suite's longest context length
    budget: int  # prompt tokens: the context length (native for short-text) minus generated tokens


def _too_short(ctx, budget):
    return TooShort(f"context length {ctx.length or ctx.native} leaves {budget} prompt tokens: too few for this task")


def _fit(ctx, prompt_for, most, budget=None):
    """The largest count whose prompt fits; an error when not even one unit does."""
    budget = ctx.budget if budget is None else budget
    k = fit(prompt_for, budget, ctx.corpus.ntok, most)
    if k == 0:
        raise _too_short(ctx, budget)
    return k


def _text(segments):
    return "".join(segments)


def _prefix(ctx, segments, budget):
    """The most leading segments whose text fits `budget` tokens (0 if not even the first does)."""
    return fit(lambda k: _text(segments[:k]), budget, ctx.corpus.ntok, len(segments))


def _insert(segments, inserts):
    """Splice each (depth, text) in at the end of the segment at that depth, before its separator."""
    segments = list(segments)
    for depth, text in inserts:
        index = min(len(segments) - 1, int(depth * len(segments)))
        body = segments[index].rstrip(" \n")
        segments[index] = body + text + segments[index][len(body) :]
    return segments


def _haystack(ctx, rng, kind):
    if kind == "noise":
        return NOISE * (ctx.budget // 16 + 1)
    return ctx.corpus.segments(rng, ctx.corpus.chars_for(ctx.budget))


def _fit_haystack(ctx, rng, kind, prompt_for, tries=20):
    """prompt_for(segments) over the longest haystack prefix that fits the prompt budget."""
    for _ in range(tries):
        segments = _haystack(ctx, rng, kind)
        k = fit(lambda k: prompt_for(segments[:k]), ctx.budget, ctx.corpus.ntok, len(segments))
        if k:
            return prompt_for(segments[:k])
    raise _too_short(ctx, ctx.budget)


def _with_question(segments, inserts, question):
    return _text(_insert(segments, inserts)).rstrip(" \n") + question


def _distinct(rng, make, count):
    out = []
    while len(out) < count:
        item = make(rng)
        if item not in out:
            out.append(item)
    return out


# ---------------------------------------------------------------- short-text tasks


def passage(ctx, rng):
    """A stretch of held-out text of at most ctx.budget tokens, cut at a segment end."""
    while True:
        segments = ctx.corpus.segments(rng, ctx.corpus.chars_for(ctx.budget))
        k = _prefix(ctx, segments, ctx.budget)
        if k:  # else a first segment longer than the window: draw another place
            return {"text": _text(segments[:k])}


def last_word(ctx, rng):
    """A passage whose last word (followed by punctuation) also occurs earlier in it, as in LAMBADA."""
    while True:
        segments = ctx.corpus.segments(rng, ctx.corpus.chars_for(ctx.budget))
        starts = [0]
        for segment in segments:
            starts.append(starts[-1] + len(segment))
        text = _text(segments)
        candidates = [m for m in re.finditer(r" ([A-Za-z]{4,})[.,;:!?]", text) if m.start() > len(text) // 3]
        if not candidates:
            continue
        word = rng.choice(candidates)
        context, target = text[: word.start()], " " + word.group(1)
        start = next((s for s in starts if ctx.corpus.ntok(context[s:] + target) <= ctx.budget), None)
        # drop leading segments until it fits; the word must then still occur in the context
        if start is not None and start < len(context):
            if re.search(rf"\b{re.escape(word.group(1).lower())}\b", context[start:].lower()):
                return {"context": context[start:], "target": target}


def _ending(ctx, segments, min_chars=40):
    """The first non-blank segments, joined until >= min_chars, cut to a quarter of the window in words."""
    ending = ""
    for segment in segments:
        if segment.strip():
            ending += segment
        if len(ending) >= min_chars:
            break
    return _clip(ctx, ending.strip(), ctx.budget // 4)


def continuation(ctx, rng, choices=4):
    """HellaSwag-style: a context, its true next segments and endings from elsewhere in the same book."""
    book = rng.randrange(len(ctx.corpus.books))
    segments = ctx.corpus.segments(rng, ctx.corpus.chars_for(ctx.budget), book=book)
    split = _prefix(ctx, segments[:-8], ctx.budget // 2)
    true = _ending(ctx, segments[split:])
    if split == 0 or not true:  # a first segment longer than half the window: draw another place
        return continuation(ctx, rng, choices)
    endings = [true]
    while len(endings) < choices:
        ending = _ending(ctx, ctx.corpus.segments(rng, 2000, book=book, nonempty=True))
        if ending and ending not in endings:
            endings.append(ending)
    rng.shuffle(endings)
    return {"context": _text(segments[:split]), "choices": endings, "label": endings.index(true)}


def word_swap(ctx, rng):
    """A context and its true next segment against the same segment with two adjacent words swapped."""
    while True:
        segments = ctx.corpus.segments(rng, ctx.corpus.chars_for(ctx.budget))
        split = _prefix(ctx, segments[:-1], ctx.budget // 2)
        true = segments[split].strip()
        words = true.split(" ")
        pairs = [i for i in range(len(words) - 1) if words[i] != words[i + 1] and words[i] and words[i + 1]]
        if split == 0 or len(words) < 6 or not pairs or ctx.corpus.ntok(_text(segments[: split + 1])) > ctx.budget:
            continue
        i = rng.choice(pairs)
        choices = [true, " ".join(words[:i] + [words[i + 1], words[i]] + words[i + 2 :])]
        rng.shuffle(choices)
        return {"context": _text(segments[:split]), "choices": choices, "label": choices.index(true)}


# ---------------------------------------------------------------- RULER-style tasks


def niah(ctx, rng, haystack="prose", keys=1, values=1, queries=1):
    """Pass keys in the teacher's episode format hidden in a haystack; the question asks `queries` names."""
    names = _distinct(rng, episodes.make_key, keys)
    secrets = {name: _distinct(rng, episodes.make_value, values) for name in names}
    needles = [episodes.needle_text(name, value) for name in names for value in secrets[name]]
    rng.shuffle(needles)
    inserts = list(zip(sorted(rng.random() for _ in needles), needles))
    asked = names[:queries]
    if queries == 1:
        question = episodes.question_text(asked[0])
    else:
        listed = ", the ".join(asked[:-1]) + f" and the {asked[-1]}"
        question = f" What are the pass keys of the {listed}?" + episodes.question_text(asked[0]).split("?", 1)[1]
    prompt = _fit_haystack(ctx, rng, haystack, lambda segments: _with_question(segments, inserts, question))
    return {"input": prompt, "outputs": [v for name in asked for v in secrets[name]], "depths": [d for d, _ in inserts]}


def _variable_name(rng):
    return "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(5))


def variable_tracking(ctx, rng, hops=4, chains=1):
    """RULER vt: chains of `VAR X = VAR Y` assignments in a noise haystack; name every variable of chain 0."""
    names = _distinct(rng, _variable_name, (hops + 1) * chains)
    values = _distinct(rng, episodes.make_value, chains)
    inserts = []
    for c in range(chains):
        chain = names[c * (hops + 1) : (c + 1) * (hops + 1)]
        statements = [f" VAR {chain[0]} = {values[c]}."] + [
            f" VAR {chain[i]} = VAR {chain[i - 1]}." for i in range(1, len(chain))
        ]
        inserts += zip(sorted(rng.random() for _ in statements), statements)
    question = (
        f"\nQuestion: Find all variables that are assigned the value {values[0]} in the text above."
        f" Answer: According to the chain of variable assignments in the text above, {hops + 1} variables"
        f" are assigned the value {values[0]}, they are:"
    )
    prompt = _fit_haystack(ctx, rng, "noise", lambda segments: _with_question(segments, inserts, question))
    return {"input": prompt, "outputs": names[: hops + 1]}


def common_words(ctx, rng, common=5):
    """RULER cwe: a numbered word list where `common` words recur; name them."""
    pool = list(ctx.corpus.word_pool())
    rng.shuffle(pool)
    frequent, rare = pool[:common], pool[common:]
    order_seed = rng.random()
    header = (
        "Below is a numbered list of words. In these words, some appear more often than others."
        " Memorize the ones that appear most often.\n"
    )
    question = (
        f"\nQuestion: What are the {common} most common words in the above list?"
        f" Answer: The top {common} words that appear most often in the list are:"
    )

    def prompt_for(k):  # k rare words once each; the frequent ones far more often
        words = frequent * max(3, k // common // 2) + rare[:k]
        random.Random(order_seed).shuffle(words)
        return header + "\n".join(f"{i}. {w}" for i, w in enumerate(words, 1)) + question

    return {"input": prompt_for(_fit(ctx, prompt_for, len(rare))), "outputs": frequent}


def frequent_words(ctx, rng, top=3, vocabulary=30, alpha=2.0):
    """RULER fwe: coded words with Zipf(alpha) counts; name the `top` most frequent."""
    coded = _distinct(rng, lambda r: "".join(r.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(5)), vocabulary)
    weights = [rank**-alpha for rank in range(1, vocabulary + 1)]
    order_seed = rng.random()
    header = (
        "Read the following coded text and track the frequency of each coded word."
        f" Find the {top} most frequently appeared coded words.\n"
    )
    question = (
        f"\nQuestion: What are the {top} most frequently appeared words in the above coded text?"
        f" Answer: According to the coded text above, the {top} most frequently appeared words are:"
    )

    def counts(n):  # about n words in all, in proportion to the Zipf weights; the top ones strictly ranked
        out = [round(n * w / sum(weights)) for w in weights]
        for i in reversed(range(top)):
            out[i] = max(out[i], out[i + 1] + 1)
        return out

    def prompt_for(n):
        words = [word for word, count in zip(coded, counts(n)) for _ in range(count)]
        random.Random(order_seed).shuffle(words)
        return header + " ".join(words) + question

    n = _fit(ctx, prompt_for, 20 * ctx.budget)
    return {"input": prompt_for(n), "outputs": coded[:top]}


def _clip(ctx, text, tokens):
    """The longest word prefix of text within `tokens` tokens (at least one word)."""
    words = text.split(" ")
    return " ".join(words[: max(1, fit(lambda k: " ".join(words[:k]), tokens, ctx.corpus.ntok, len(words)))])


def _passages(ctx, rng, count, tokens, avoid=None):
    """`count` passages of consecutive non-blank segments, each clipped to `tokens` tokens."""
    out = []
    while len(out) < count:
        text = _clip(ctx, _text(ctx.corpus.segments(rng, ctx.corpus.chars_for(tokens), nonempty=True)).strip(), tokens)
        if avoid is None or avoid not in text:
            out.append(text)
    return out


def _cloze(ctx, rng, tokens, words_before=4):
    """A passage and, in it, a phrase whose next word (4+ letters) is the answer."""
    while True:
        (gold,) = _passages(ctx, rng, 1, tokens)
        spots = [
            (words, i)
            for words in (segment.split() for segment in split_segments(gold))
            for i, word in enumerate(words)
            if i >= words_before and re.fullmatch(r"[A-Za-z]{4,}[.,;:!?]?", word)
        ]
        if spots:
            words, i = rng.choice(spots)
            return gold, " ".join(words[i - words_before : i]), words[i].strip(".,;:!?")


def qa(ctx, rng, document_fraction=1 / 6):
    """RULER-style QA: which word follows a phrase, answered from one of many corpus documents.

    Documents are a fixed share of the native window, so longer contexts hold more of them.
    """
    tokens = int(ctx.native * document_fraction)
    gold, phrase, answer = _cloze(ctx, rng, tokens)
    depth = rng.random()
    others = _passages(ctx, rng, ctx.budget // tokens + 1, tokens, avoid=phrase)
    header = (
        "Answer the question based on the given documents. Only give me the answer and do not output any other"
        " words.\n\nThe following are given documents.\n\n"
    )
    question = f'\n\nQuestion: Which word comes after "{phrase}" in the documents above? Answer:'

    def prompt_for(k):
        docs = list(others[: k - 1])
        docs.insert(int(depth * k), gold)
        return header + "\n\n".join(f"Document {i}:\n{d}" for i, d in enumerate(docs, 1)) + question

    return {"input": prompt_for(_fit(ctx, prompt_for, len(others) + 1)), "outputs": [answer]}


# ---------------------------------------------------------------- LongBench-style tasks
# Inputs have a natural length around the context length; over-long ones keep head and tail.


def _natural_budget(ctx, rng):
    return int(ctx.budget * rng.uniform(0.6, 1.2))


def passage_retrieval(ctx, rng, paragraph_fraction=1 / 8):
    """LongBench passage_retrieval: which numbered paragraph a verbatim quote comes from."""
    target = _natural_budget(ctx, rng)
    tokens = int(ctx.native * paragraph_fraction)
    paragraphs = _passages(ctx, rng, target // tokens + 2, tokens)

    def prompt_for(k, quote):
        return (
            f"Here are {k} paragraphs, along with a quote from one of them. Determine which paragraph the quote"
            " is from.\n\n"
            + "\n\n".join(f"Paragraph {i}: {p}" for i, p in enumerate(paragraphs[:k], 1))
            + f"\n\nThe following is a quote.\n\n{quote}\n\nThe answer is: Paragraph"
        )

    longest = max((piece for p in paragraphs for piece in split_segments(p)), key=len).strip()
    k = max(2, fit(lambda k: prompt_for(k, longest), target, ctx.corpus.ntok, len(paragraphs)))
    gold = rng.randrange(k)
    quote = max(split_segments(paragraphs[gold]), key=len).strip()
    if any(quote in p for i, p in enumerate(paragraphs[:k]) if i != gold):
        return passage_retrieval(ctx, rng)
    return {"input": ctx.corpus.truncate_middle(prompt_for(k, quote), ctx.budget), "outputs": [str(gold + 1)]}


def passage_count(ctx, rng, max_repeats=2, paragraph_fraction=1 / 16):
    """LongBench passage_count: how many distinct paragraphs there are among repeated ones."""
    target = _natural_budget(ctx, rng)
    tokens = int(ctx.native * paragraph_fraction)
    unique = _passages(ctx, rng, target // tokens + 2, tokens)
    repeats = [rng.randint(1, max_repeats) for _ in unique]
    order_seed = rng.random()

    def prompt_for(m):
        shown = [p for p, r in zip(unique[:m], repeats) for _ in range(r)]
        random.Random(order_seed).shuffle(shown)
        return (
            "Below are some paragraphs, some of them repeated. Count the distinct paragraphs.\n\n"
            + "\n\n".join(f"Paragraph {i}: {p}" for i, p in enumerate(shown, 1))
            + "\n\nThe number of distinct paragraphs is"
        )

    m = max(1, fit(prompt_for, target, ctx.corpus.ntok, len(unique)))
    return {"input": ctx.corpus.truncate_middle(prompt_for(m), ctx.budget), "outputs": [str(len(set(unique[:m])))]}


def line_completion(ctx, rng, prefix_words=3, min_words=7, answer_words=12):
    """Long-document extraction (F1): continue a line or sentence of the document from its first words."""
    target = _natural_budget(ctx, rng)
    for _ in range(20):
        text = _text(ctx.corpus.segments(rng, ctx.corpus.chars_for(target))).lstrip()
        document = split_segments(_clip(ctx, text, max(16, target - 40)))
        starts = [" ".join(segment.split()[:prefix_words]) for segment in document]
        spots = [i for i, seg in enumerate(document) if len(seg.split()) >= min_words and starts.count(starts[i]) == 1]
        if spots:
            break
    else:
        raise _too_short(ctx, ctx.budget)
    words = document[rng.choice(spots)].split()
    prefix, rest = " ".join(words[:prefix_words]), " ".join(words[prefix_words : prefix_words + answer_words])
    prompt = (
        "Read the text and complete the line.\n\n"
        + _text(document).rstrip()
        + f'\n\nQuestion: In the text above, how does the line that begins with "{prefix}" continue?'
        f" Answer: {prefix}"
    )
    return {"input": ctx.corpus.truncate_middle(prompt, ctx.budget), "outputs": [rest]}


# ---------------------------------------------------------------- perplexity by context length


def window(ctx, rng, scored_fraction=0.25):
    """A window of `length` tokens ending at a random point of a book; its last tokens are scored.

    The end point and the scored tokens (a fraction of the suite's shortest length) do not depend on the
    length, so each length scores the same tokens given more or less context: the classic
    context-extension perplexity curve.
    """
    scored = max(1, int(ctx.min_length * scored_fraction))
    longest = ctx.max_length
    books = [b for b in range(len(ctx.corpus.books)) if len(ctx.corpus.tokens(b)[0]) > longest]
    if not books:
        raise ValueError(f"no held-out book has more than {longest} tokens, the longest perplexity window")
    book = rng.choices(books, weights=[len(ctx.corpus.tokens(b)[0]) for b in books])[0]
    ids, offsets = ctx.corpus.tokens(book)
    end = rng.randrange(longest, len(ids))
    text = ctx.corpus.books[book][1]
    start, middle = offsets[end - ctx.length][0], offsets[end - scored][0]
    context, target = text[start:middle], text[middle : offsets[end - 1][1]]
    n_tokens = ctx.corpus.ntok(context + target) - ctx.corpus.ntok(context)  # as lm-eval splits the pair
    return {
        "context": context,
        "continuation": target,
        "n_tokens": n_tokens,
        "n_words": len(re.split(r"\s+", target.strip())),
        "n_bytes": len(target.encode("utf-8")),
    }


GENERATORS = {
    "passage": passage,
    "last_word": last_word,
    "continuation": continuation,
    "word_swap": word_swap,
    "niah": niah,
    "variable_tracking": variable_tracking,
    "common_words": common_words,
    "frequent_words": frequent_words,
    "qa": qa,
    "passage_retrieval": passage_retrieval,
    "passage_count": passage_count,
    "line_completion": line_completion,
    "window": window,
}
