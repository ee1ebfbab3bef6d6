"""`ard evaldata`: generate a local suite's jsonl files from the held-out corpus, deterministically.

Layout of --out (the embedded default's is results/evaldata/<suite>/, where the plain task YAMLs look):
    <task>/<context length>.jsonl   per-length tasks (RULER-, LongBench-style, perplexity by length)
    <task>/test.jsonl               short-text tasks
    manifest.json                   suite, lengths, seed, and each file's sample count and sha256
A length too short to hold a task's fixed prompt parts (possible only in very small configs) is
recorded in the manifest as skipped, with the reason, and left out of the evaluation.
The same config and seed give byte-identical files. Suites of lm-eval's own tasks get a manifest only:
their data comes from `ard stage-eval-data`.
"""
import hashlib
import json
import random
from pathlib import Path

from ard import config as ard_config
from ard.data import recorded_native_context
from ard.evaluation.corpus import Corpus
from ard.evaluation.generators import GENERATORS, Context, TooShort
from ard.evaluation.suites import check_tasks, load_suite, task_config, task_manager
from ard.io import atomic_dir, read_json, write_json
from ard.runtime import setup, stage_main, stage_parser

MANIFEST = "manifest.json"


def read_manifest(evaldata_dir, suite_name):
    path = Path(evaldata_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"missing {path}: run `ard evaldata --suite {suite_name}` first")
    return read_json(path)


def data_file(task, length):
    return f"{task}/{'test' if length is None else length}.jsonl"


def length_key(length):
    return "test" if length is None else str(length)


def prompt_budget(task_cfg, context):
    """Prompt tokens left at this context once a generate_until task's answer tokens are reserved."""
    if task_cfg.get("output_type") != "generate_until":
        return context
    return context - task_cfg["generation_kwargs"]["max_gen_toks"]


def _sample_rng(seed, task, index):
    """Sample i of a task: the same at every length and whatever the sample count."""
    return random.Random(f"{seed}/{task}/{index}")


def generate(suite, manager, corpus, seed, out_dir):
    """Write every (task, length) file of a local suite under out_dir; return the manifest's file table."""
    files = {}
    for task in suite.tasks:
        task_cfg = task_config(manager, task.name)
        params = dict(task_cfg["metadata"])
        generator = GENERATORS[params.pop("generator")]
        params.pop("version", None)
        files[task.name] = {}
        for length in suite.lengths or [None]:
            ctx = Context(
                corpus=corpus,
                native=suite.native_context,
                length=length,
                min_length=min(suite.lengths) if suite.lengths else None,
                max_length=max(suite.lengths) if suite.lengths else None,
                budget=prompt_budget(task_cfg, length or suite.window),
            )
            try:
                rows = [
                    {"id": i, "context_length": length, **generator(ctx, _sample_rng(seed, task.name, i), **params)}
                    for i in range(task.limit)
                ]
            except TooShort as error:
                files[task.name][length_key(length)] = {"skipped": str(error)}
                print(f"warning: {task.name} skipped at {length}: {error}")
                continue
            text = "".join(json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n" for row in rows)
            path = out_dir / data_file(task.name, length)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            files[task.name][length_key(length)] = {
                "path": data_file(task.name, length),
                "n": len(rows),
                "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
            }
    return files


def manifest(suite, seed, files):
    return {
        "suite": suite.name,
        "source": suite.source,
        "seed": seed,
        "native_context": suite.native_context,
        "lengths": list(suite.lengths) if suite.lengths else None,
        "window": None if suite.lengths else suite.window,
        "files": files,
    }


@stage_main
def main(argv=None):
    parser = stage_parser("ard evaldata", __doc__)
    parser.add_argument("--config", required=True, help="experiment config (YAML)")
    parser.add_argument("--suite", required=True, help="suite name: eval_configs/suites/<suite>.yaml")
    parser.add_argument("--data", required=True, help="data stage output (splits/, tokenizer/)")
    parser.add_argument("--out", required=True, help="output folder, replaced atomically")
    args = parser.parse_args(argv)

    config = ard_config.load(args.config)
    setup(config)
    suite = load_suite(args.suite, config, recorded_native_context(args.data))
    manager = task_manager(suite)
    check_tasks(suite, manager)
    files = {}
    with atomic_dir(args.out) as tmp:
        if suite.source == "local":
            files = generate(suite, manager, Corpus(args.data), config["seed"], tmp)
        write_json(tmp / MANIFEST, manifest(suite, config["seed"], files))
    print(f"evaldata {suite.name}: {sum(len(v) for v in files.values())} files in {args.out}")
