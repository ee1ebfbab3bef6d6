"""Held-out text for the evaluation data: the data stage's test split, by book, measured in model tokens."""
import json
import re
from collections import Counter
from pathlib import Path

from ard.data import load_tokenizer


def split_segments(text):
    """Lines, and sentences of long lines, each keeping its trailing newline or space."""
    return [segment for segment in re.split(r"(?<=\n)|(?<=[.;:!?] )", text) if segment]


class Corpus:
    """The test split regrouped into books (one source's documents, in file order), cut into segments.

    A segment is a line or a sentence of a long line, with its trailing newline or space kept, so that
    "".join(consecutive segments) is the held-out text exactly as the model was trained on it.
    """

    def __init__(self, data_dir, split="test"):
        data_dir = Path(data_dir)
        path = data_dir / "splits" / f"{split}.jsonl"
        if not path.is_file():
            raise FileNotFoundError(f"missing data file {path} (run the data stage first)")
        books = {}
        with open(path) as handle:
            for line in handle:
                doc = json.loads(line)
                books.setdefault(doc["source"], []).append(doc["text"].rstrip("\n"))
        if not books:
            raise ValueError(f"{path} holds no documents")
        self.books = [(source, "\n".join(texts) + "\n") for source, texts in books.items()]
        self.book_segments = [split_segments(text) for _, text in self.books]
        tokenizer_dir = data_dir / "tokenizer"
        if not tokenizer_dir.is_dir():
            raise FileNotFoundError(f"missing tokenizer directory {tokenizer_dir} (run the data stage first)")
        self.tokenizer = load_tokenizer(tokenizer_dir)
        sample = self.books[0][1][:20000]
        self.chars_per_token = len(sample) / max(1, self.ntok(sample))
        self._tokens = {}

    def ntok(self, text):
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def chars_for(self, tokens):
        """Characters that surely hold more than `tokens` tokens of corpus text."""
        return int(tokens * self.chars_per_token * 1.5) + 200

    def _pick_book(self, rng, book=None):
        if book is None:
            sizes = [len(text) for _, text in self.books]
            book = rng.choices(range(len(self.books)), weights=sizes)[0]
        return book

    def segments(self, rng, n_chars, book=None, nonempty=False):
        """Consecutive segments from a random start (continuing into the next book) totalling >= n_chars."""
        book = self._pick_book(rng, book)
        index = rng.randrange(len(self.book_segments[book]))
        out, total = [], 0
        while total < n_chars:
            segment = self.book_segments[book][index]
            if segment.strip() or not nonempty:
                out.append(segment)
                total += len(segment)
            index += 1
            if index == len(self.book_segments[book]):
                book, index = (book + 1) % len(self.books), 0
        return out

    def tokens(self, book):
        """Token ids of a whole book with each token's character span (cached)."""
        if book not in self._tokens:
            encoding = self.tokenizer(self.books[book][1], add_special_tokens=False, return_offsets_mapping=True)
            self._tokens[book] = (encoding["input_ids"], encoding["offset_mapping"])
        return self._tokens[book]

    def word_pool(self, size=1000, min_length=4):
        """The corpus's most frequent lowercase words, most frequent first (ties alphabetical)."""
        if not hasattr(self, "_word_pool"):
            counts = Counter(w for _, text in self.books for w in re.findall(rf"\b[a-z]{{{min_length},}}\b", text))
            self._word_pool = [w for w, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]
        return self._word_pool[:size]

    def decode(self, ids):
        return self.tokenizer.decode(ids, clean_up_tokenization_spaces=False)

    def truncate_middle(self, text, budget):
        """LongBench's truncation: an over-long input keeps its first and last budget/2 tokens."""
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        keep = budget
        while len(ids) > budget:
            head = keep // 2
            shortened = self.decode(ids[:head]) + self.decode(ids[len(ids) - (keep - head) :])
            over = self.ntok(shortened) - budget  # re-tokenising the seam can merge differently
            if over <= 0:
                return shortened
            keep -= over
        return text

def fit(prompt_for, budget, ntok, most):
    """The largest k in [1, most] whose prompt_for(k) fits in `budget` tokens (binary search); 0 if none."""
    if ntok(prompt_for(1)) > budget:
        return 0
    low, high = 1, most
    while low < high:
        middle = (low + high + 1) // 2
        if ntok(prompt_for(middle)) <= budget:
            low = middle
        else:
            high = middle - 1
    return low
