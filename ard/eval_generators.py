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
from ard.eval_corpus import Corpus, fit

NOISE = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."


@dataclass(frozen=True)
class Context:
    corpus: Corpus
    native: int
    length: int | None  # this file's context length; None for short-text tasks
    max_length: int | None  # the suite's longest context length
    budget: int  # prompt tokens: the context length (native for short-text) minus generated tokens


def _fit(ctx, prompt_for, most, budget=None):
    """The largest count whose prompt fits; an error when not even one unit does."""
    budget = ctx.budget if budget is None else budget
    k = fit(prompt_for, budget, ctx.corpus.ntok, most)
    if k == 0:
        raise ValueError(f"context length {ctx.length or ctx.native} leaves {budget} prompt tokens: too few for this task")
    return k


def _first_words(lines, n):
    """The haystack's first n words, keeping its line structure (the last line may be cut)."""
    out = []
    for line in lines:
        if n <= 0:
            break
        words = line.split(" ")
        out.append(" ".join(words[:n]))
        n -= len(words)
    return out


def _fit_haystack(ctx, rng, kind, prompt_for, tries=20):
    """prompt_for(lines) over the longest haystack prefix (in words) that fits the prompt budget."""
    for _ in range(tries):
        lines = _haystack(ctx, rng, kind)
        total = sum(len(line.split(" ")) for line in lines)
        k = fit(lambda k: prompt_for(_first_words(lines, k)), ctx.budget, ctx.corpus.ntok, total)
        if k:
            return prompt_for(_first_words(lines, k))
    raise ValueError(f"context length {ctx.length or ctx.native} leaves {ctx.budget} prompt tokens: too few for this task")


def _insert(lines, inserts):
    """Append each (depth, text) to the end of the line at that depth (0 = first line, 1 = last)."""
    lines = list(lines)
    for depth, text in inserts:
        index = min(len(lines) - 1, int(depth * len(lines)))
        lines[index] += text
    return lines


def _haystack(ctx, rng, kind):
    if kind == "noise":
        return [NOISE] * (ctx.budget // 4 + 1)
    return ctx.corpus.lines(rng, ctx.corpus.chars_for(ctx.budget))


def _distinct(rng, make, count):
    out = []
    while len(out) < count:
        item = make(rng)
        if item not in out:
            out.append(item)
    return out


# ---------------------------------------------------------------- short-text tasks


def passage(ctx, rng):
    """A stretch of held-out text of at most ctx.budget tokens, cut at line ends."""
    while True:
        lines = ctx.corpus.lines(rng, ctx.corpus.chars_for(ctx.budget))
        k = fit(lambda k: "\n".join(lines[:k]), ctx.budget, ctx.corpus.ntok, len(lines))
        if k:  # else a first line longer than the window: draw another place
            return {"text": "\n".join(lines[:k])}


def last_word(ctx, rng):
    """A passage whose last word (followed by punctuation) also occurs earlier in it, as in LAMBADA."""
    while True:
        lines = ctx.corpus.lines(rng, ctx.corpus.chars_for(ctx.budget))
        text = "\n".join(lines)
        candidates = [
            m
            for m in re.finditer(r" ([A-Za-z]{4,})[.,;:!?]", text)
            if m.start() > len(text) // 3
            and re.search(rf"\b{re.escape(m.group(1).lower())}\b", text[: m.start()].lower())
        ]
        if not candidates:
            continue
        word = rng.choice(candidates)
        context, target = text[: word.start()], " " + word.group(1)
        starts = [0] + [m.end() for m in re.finditer("\n", context)]
        for start in starts:  # drop leading lines until context + target fits
            if ctx.corpus.ntok(context[start:] + target) <= ctx.budget:
                if re.search(rf"\b{re.escape(word.group(1).lower())}\b", context[start:].lower()):
                    return {"context": context[start:], "target": target}
                break


def _ending(ctx, lines, min_chars=40, max_lines=3):
    """The first non-empty lines, joined until >= min_chars, cut to a quarter of the window in words."""
    ending = []
    for line in lines:
        if line.strip():
            ending.append(line)
        if len(" ".join(ending)) >= min_chars or len(ending) == max_lines:
            break
    words = "\n".join(ending).split(" ")
    keep = fit(lambda k: " ".join(words[:k]), ctx.budget // 4, ctx.corpus.ntok, len(words))
    return " ".join(words[: max(1, keep)])


def continuation(ctx, rng, choices=4):
    """HellaSwag-style: context lines, the true next lines and endings from elsewhere in the same book."""
    book = rng.randrange(len(ctx.corpus.books))
    lines = ctx.corpus.lines(rng, ctx.corpus.chars_for(ctx.budget), book=book)
    split = fit(lambda k: "\n".join(lines[:k]), ctx.budget // 2, ctx.corpus.ntok, len(lines) - 8)
    if split == 0:  # a first line longer than half the window: draw another place
        return continuation(ctx, rng, choices)
    context = "\n".join(lines[:split]) + "\n"
    true = _ending(ctx, lines[split:])
    if not true.strip():
        return continuation(ctx, rng, choices)
    endings = [true]
    while len(endings) < choices:
        ending = _ending(ctx, ctx.corpus.lines(rng, 2000, book=book, nonempty=True))
        if ending not in endings:
            endings.append(ending)
    rng.shuffle(endings)
    return {"context": context, "choices": endings, "label": endings.index(true)}


def word_swap(ctx, rng):
    """A context and the true next line against the same line with two adjacent words swapped."""
    while True:
        lines = ctx.corpus.lines(rng, ctx.corpus.chars_for(ctx.budget))
        split = fit(lambda k: "\n".join(lines[:k]), ctx.budget // 2, ctx.corpus.ntok, len(lines) - 1)
        words = lines[split].split(" ")
        if split == 0 or ctx.corpus.ntok("\n".join(lines[: split + 1])) > ctx.budget:
            continue
        pairs = [i for i in range(len(words) - 1) if words[i] != words[i + 1] and words[i] and words[i + 1]]
        if len(words) < 6 or not pairs:
            continue
        i = rng.choice(pairs)
        swapped = words[:i] + [words[i + 1], words[i]] + words[i + 2 :]
        choices = [lines[split], " ".join(swapped)]
        rng.shuffle(choices)
        return {"context": "\n".join(lines[:split]) + "\n", "choices": choices, "label": choices.index(lines[split])}


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
    prompt = _fit_haystack(ctx, rng, haystack, lambda lines: "\n".join(_insert(lines, inserts)) + question)
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
    prompt = _fit_haystack(ctx, rng, "noise", lambda lines: "\n".join(_insert(lines, inserts)) + question)
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

    def prompt_for(n):  # n words in all, counts proportional to the Zipf weights
        counts = [max(1, round(n * w / sum(weights))) for w in weights]
        words = [word for word, count in zip(coded, counts) for _ in range(count)]
        random.Random(order_seed).shuffle(words)
        return header + " ".join(words) + question

    n = _fit(ctx, prompt_for, 20 * ctx.budget)
    if n * weights[top - 1] / sum(weights) < n * weights[top] / sum(weights) + 1:
        raise ValueError(f"context length {ctx.length} is too short for frequent-word extraction")
    return {"input": prompt_for(n), "outputs": coded[:top]}


def _passages(ctx, rng, count, n_chars=200, avoid=None):
    out = []
    while len(out) < count:
        text = "\n".join(ctx.corpus.lines(rng, n_chars, nonempty=True))
        if avoid is None or avoid not in text:
            out.append(text)
    return out


def _cloze(ctx, rng, words_before=4):
    """A passage and, in it, a phrase whose next word (4+ letters) is the answer."""
    while True:
        (gold,) = _passages(ctx, rng, 1)
        spots = [
            (line, i)
            for line in gold.split("\n")
            for i, word in enumerate(line.split(" "))
            if i >= words_before and re.fullmatch(r"[A-Za-z]{4,}[.,;:!?]?", word)
        ]
        if spots:
            line, i = rng.choice(spots)
            words = line.split(" ")
            return gold, " ".join(words[i - words_before : i]), words[i].strip(".,;:!?")


def qa(ctx, rng, max_documents=1000):
    """RULER-style QA: which word follows a phrase, answered from one of many corpus documents."""
    gold, phrase, answer = _cloze(ctx, rng)
    depth = rng.random()
    others = _passages(ctx, rng, min(max_documents, ctx.budget // 20 + 1), avoid=phrase)
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


def passage_retrieval(ctx, rng):
    """LongBench passage_retrieval: which numbered paragraph a verbatim quote comes from."""
    target = _natural_budget(ctx, rng)
    paragraphs = _passages(ctx, rng, target // 10 + 2)

    def prompt_for(k, quote):
        return (
            f"Here are {k} paragraphs, along with a quote from one of them. Determine which paragraph the quote"
            " is from.\n\n"
            + "\n\n".join(f"Paragraph {i}: {p}" for i, p in enumerate(paragraphs[:k], 1))
            + f"\n\nThe following is a quote.\n\n{quote}\n\nThe answer is: Paragraph"
        )

    longest = max((line for p in paragraphs for line in p.split("\n")), key=len)
    k = _fit(ctx, lambda k: prompt_for(k, longest), len(paragraphs), budget=target)
    gold = rng.randrange(k)
    quote = max(paragraphs[gold].split("\n"), key=len)
    if any(quote in p for i, p in enumerate(paragraphs[:k]) if i != gold):
        return passage_retrieval(ctx, rng)
    return {"input": ctx.corpus.truncate_middle(prompt_for(k, quote), ctx.budget), "outputs": [str(gold + 1)]}


def passage_count(ctx, rng, max_repeats=3):
    """LongBench passage_count: how many distinct paragraphs there are among repeated ones."""
    target = _natural_budget(ctx, rng)
    unique = _passages(ctx, rng, target // 20 + 2, n_chars=120)
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

    m = _fit(ctx, prompt_for, len(unique), budget=target)
    return {"input": ctx.corpus.truncate_middle(prompt_for(m), ctx.budget), "outputs": [str(len(set(unique[:m])))]}


def line_completion(ctx, rng, prefix_words=3, min_words=7):
    """Long-document extraction (F1): continue a line of the document from its first words."""
    target = _natural_budget(ctx, rng)
    lines = ctx.corpus.lines(rng, ctx.corpus.chars_for(target))
    k = _fit(ctx, lambda k: "\n".join(lines[:k]), len(lines), budget=target - 40)
    document = lines[:k]
    prefixes = [" ".join(line.split(" ")[:prefix_words]) for line in document]
    spots = [
        i
        for i, line in enumerate(document)
        if len(line.split(" ")) >= min_words and prefixes.count(prefixes[i]) == 1
    ]
    if not spots:
        return line_completion(ctx, rng, prefix_words, min_words)
    line = document[rng.choice(spots)]
    prefix, rest = " ".join(line.split(" ")[:prefix_words]), " ".join(line.split(" ")[prefix_words:])
    prompt = (
        "Read the text and complete the line.\n\n"
        + "\n".join(document)
        + f'\n\nQuestion: In the text above, how does the line that begins with "{prefix}" continue?'
        f" Answer: {prefix}"
    )
    return {"input": ctx.corpus.truncate_middle(prompt, ctx.budget), "outputs": [rest]}


# ---------------------------------------------------------------- perplexity by context length


def window(ctx, rng, scored_fraction=0.25):
    """A window of `length` tokens ending at a random point of a book; its last tokens are scored.

    The end point and the scored tokens do not depend on the length, so each length scores the same
    tokens given more or less context: the classic context-extension perplexity curve.
    """
    scored = max(1, int(ctx.native * scored_fraction))
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
