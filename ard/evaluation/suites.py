"""Evaluation suites as data: eval_configs/suites/<name>.yaml, resolved against an experiment config.

A suite file names lm-eval tasks, the context lengths they run at (multiples of the native context or
absolute token counts), few-shot counts and sample limits:

    description: ...
    source: local          # local: tasks in eval_configs/tasks with data from `ard evaldata`
                           # lm_eval: lm-eval's own tasks, data staged by `ard stage-eval-data`
    lengths: {unit: native, values: [1, 2, 4]}   # omitted for short-text suites
    window: {unit: tokens, value: 512}            # short-text suites: the window their samples fill
                                                  # (default: the native context)
    lengths_as: max_seq_lengths   # lm_eval only: pass the lengths as this task metadata in one run
                                  # (RULER builds every length itself); default: one run per length
    limit: 12              # samples per task (and per length)
    num_fewshot: 0
    tasks: [ard_niah_single_1, {task: mmlu, num_fewshot: 5}]

`evaluation.overrides.<suite>` in the config replaces lengths, window, limit or num_fewshot, or keeps a subset
of the tasks (`tasks: [...]`); `evaluation.limit` caps every limit. Everything here is checked before any data is generated or any model is loaded.
"""
from dataclasses import dataclass
from pathlib import Path

import yaml

from ard.config import REPO_ROOT

EVAL_CONFIGS = REPO_ROOT / "eval_configs"
TASKS_DIR = EVAL_CONFIGS / "tasks"
SUITES_DIR = EVAL_CONFIGS / "suites"
SOURCES = ("local", "lm_eval")
SUITE_KEYS = {"description", "source", "lengths", "window", "lengths_as", "limit", "num_fewshot", "tasks"}


@dataclass(frozen=True)
class SuiteTask:
    name: str
    num_fewshot: int
    limit: int | None


@dataclass(frozen=True)
class Suite:
    name: str
    source: str
    native_context: int
    lengths: tuple | None  # absolute token counts, ascending; None for short-text suites
    window: int  # short-text suites: the tokens a sample fills and the model's max_length
    tasks: tuple
    lengths_as: str | None

    @property
    def task_names(self):
        return [task.name for task in self.tasks]


def _count(value, what, minimum):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return value


def _lengths(spec, native, where):
    if not isinstance(spec, dict) or set(spec) != {"unit", "values"} or spec["unit"] not in ("native", "tokens"):
        raise ValueError(f"{where}.lengths must be {{unit: native|tokens, values: [...]}}, got {spec!r}")
    values = spec["values"]
    if not isinstance(values, list) or not values:
        raise ValueError(f"{where}.lengths.values must be a non-empty list, got {values!r}")
    scale = native if spec["unit"] == "native" else 1
    return tuple(sorted({_count(v, f"{where}.lengths.values entry", 1) * scale for v in values}))


def _window(spec, native, where):
    if not isinstance(spec, dict) or set(spec) != {"unit", "value"} or spec["unit"] not in ("native", "tokens"):
        raise ValueError(f"{where}.window must be {{unit: native|tokens, value: N}}, got {spec!r}")
    return _count(spec["value"], f"{where}.window.value", 1) * (native if spec["unit"] == "native" else 1)


def load_suite(name, config, native):
    """Read eval_configs/suites/<name>.yaml, apply the config's overrides and check its shape.

    `native` is the teacher's native context (recorded by the data stage), the unit of native lengths."""
    path = SUITES_DIR / f"{name}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no suite named {name!r}: {path} does not exist")
    spec = yaml.safe_load(path.read_text()) or {}
    where = f"suite {name} ({path})"
    unknown = sorted(set(spec) - SUITE_KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r}")
    evaluation = config["evaluation"]
    override = dict(evaluation["overrides"].get(name, {}))
    kept_tasks = override.pop("tasks", None)
    spec.update(override)
    if spec.get("source", "local") not in SOURCES:
        raise ValueError(f"{where}: source must be one of {SOURCES}, got {spec['source']!r}")
    lengths = _lengths(spec["lengths"], native, where) if "lengths" in spec else None
    if lengths and "window" in spec:
        raise ValueError(f"{where}: window is for short-text suites; a suite with lengths runs at each length")
    window = _window(spec["window"], native, where) if "window" in spec else native
    default_limit = spec.get("limit")
    if evaluation["limit"] is not None:
        default_limit = min(default_limit or evaluation["limit"], evaluation["limit"])
    tasks = []
    entries = spec.get("tasks") or []
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{where}: tasks must be a non-empty list")
    if kept_tasks is not None:
        entries = _kept_entries(entries, kept_tasks, f"evaluation.overrides.{name}.tasks")
    for entry in entries:
        entry = {"task": entry} if isinstance(entry, str) else entry
        if not isinstance(entry, dict) or not isinstance(entry.get("task"), str):
            raise ValueError(f"{where}: each task is a name or {{task: name, ...}}, got {entry!r}")
        limit = entry.get("limit", default_limit)
        if evaluation["limit"] is not None and limit is not None:
            limit = min(limit, evaluation["limit"])
        tasks.append(
            SuiteTask(
                name=entry["task"],
                num_fewshot=_count(entry.get("num_fewshot", spec.get("num_fewshot", 0)), f"{where}: num_fewshot", 0),
                limit=None if limit is None else _count(limit, f"{where}: limit", 1),
            )
        )
    if spec.get("source", "local") == "local" and any(task.limit is None for task in tasks):
        raise ValueError(f"{where}: local tasks need a limit (the number of samples to generate)")
    names = [task.name for task in tasks]
    if len(set(names)) != len(names):
        raise ValueError(f"{where}: a task is listed twice")
    if spec.get("lengths_as") and (spec.get("source") != "lm_eval" or lengths is None):
        raise ValueError(f"{where}: lengths_as needs source: lm_eval and lengths")
    return Suite(name, spec.get("source", "local"), native, lengths, window, tuple(tasks), spec.get("lengths_as"))


def _kept_entries(entries, kept, where):
    """The suite file's task entries named in `kept`, in that order (they keep their own settings)."""
    by_name = {entry if isinstance(entry, str) else entry.get("task"): entry for entry in entries}
    unknown = [name for name in kept if name not in by_name]
    if unknown:
        raise ValueError(f"{where}: {unknown[0]!r} is not a task of this suite (its tasks: {', '.join(map(str, by_name))})")
    return [by_name[name] for name in kept]


def task_manager(suite, metadata=None):
    """lm-eval's task index: our tasks only for local suites (indexing lm-eval's own takes ~15 s)."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(TASKS_DIR), include_defaults=suite.source == "lm_eval", metadata=metadata)


def check_tasks(suite, manager):
    """Every task must be registered; a local one must live in eval_configs/tasks and name its generator."""
    from ard.evaluation.generators import GENERATORS

    for name in suite.task_names:
        if name not in manager.all_tasks:
            raise ValueError(f"suite {suite.name}: unknown task {name!r} (not in lm-eval's registry nor {TASKS_DIR})")
        if suite.source == "local":
            generator = task_config(manager, name).get("metadata", {}).get("generator")
            if generator not in GENERATORS:
                raise ValueError(f"suite {suite.name}: task {name} names no known data generator ({generator!r})")


def task_yaml(manager, name):
    path = manager.task_index[name].yaml_path
    if path is None or Path(path).parent != TASKS_DIR:
        raise ValueError(f"task {name} is not a local task (no YAML in {TASKS_DIR})")
    return Path(path)


def task_config(manager, name, resolve_functions=False):
    """A local task's YAML with its includes merged, as lm-eval reads it."""
    from lm_eval.tasks._yaml_loader import load_yaml

    return load_yaml(task_yaml(manager, name), resolve_func=resolve_functions)
