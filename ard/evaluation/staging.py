"""Data of lm-eval's own tasks: staged into a folder on a networked machine, read from it offline.

lm-eval fetches a task's data while it builds the task: hub datasets through datasets.load_dataset,
and for RULER also SQuAD/HotpotQA JSON over HTTP, Paul Graham essays from the hub and nltk's punkt_tab.
`stage` saves each of these under one folder (datasets as parquet per split, URLs as files, nltk data);
`offline(folder)` then answers the same calls from that folder, so `ard evaluate` needs no network.

Folder layout (also the layout of a --mirror, i.e. files fetched by hand, except that a mirror's splits
may be .parquet, .jsonl or .json):
    datasets/<hub path>/<config name or "default">/<split>.parquet
    urls/<file name of the URL>
    nltk_data/
    staged.json     what was staged, and from where
"""
import contextlib
import inspect
import json
import os
import shutil
from pathlib import Path

MANIFEST = "staged.json"
DEFAULT_CONFIG = "default"
NLTK_PACKAGE = "punkt_tab"
# Builders that read local files, never the hub.
LOCAL_BUILDERS = {"json", "csv", "parquet", "text", "arrow", "pandas"}


def _dataset_dir(root, path, name):
    return Path(root) / "datasets" / path / (name or DEFAULT_CONFIG)


def leaf_tasks(manager, name):
    """The individual tasks behind a task, group or tag name of lm-eval's index."""
    from lm_eval.tasks._index import Kind
    from lm_eval.tasks._yaml_loader import load_yaml

    entry = manager.task_index[name]
    if entry.kind == Kind.TAG:
        return sorted({leaf for tagged in entry.tags for leaf in leaf_tasks(manager, tagged)})
    if entry.kind == Kind.GROUP:
        members = load_yaml(entry.yaml_path, resolve_func=False).get("task", [])
        names = [m if isinstance(m, str) else m.get("task") or m.get("group") for m in members]
        known = [member for member in names if member in manager.task_index]
        return sorted({leaf for member in known for leaf in leaf_tasks(manager, member)})
    return [name]


def _ruler_urls():
    from lm_eval.tasks.ruler import qa_utils

    return [inspect.signature(f).parameters["url"].default for f in (qa_utils.read_squad, qa_utils.read_hotpotqa)]


def requirements(manager, names):
    """(hub datasets as (path, config name), URLs, needs nltk) that building these tasks fetches."""
    from lm_eval.tasks._yaml_loader import load_yaml

    datasets, urls, nltk = set(), set(), False
    for leaf in sorted({leaf for name in names for leaf in leaf_tasks(manager, name)}):
        path = manager.task_index[leaf].yaml_path
        cfg = load_yaml(path, resolve_func=False)
        if cfg.get("dataset_path") and cfg["dataset_path"] not in LOCAL_BUILDERS:
            datasets.add((cfg["dataset_path"], cfg.get("dataset_name") or None))
        if Path(path).parent.name == "ruler":  # RULER builds its data from these at task-build time
            datasets.add(("baber/paul_graham_essays", None))
            urls.update(_ruler_urls())
            nltk = True
    return sorted(datasets, key=str), sorted(urls), nltk


def _load_mirror_dataset(mirror, path, name):
    import datasets

    folder = _dataset_dir(mirror, path, name)
    files = sorted(p for p in folder.glob("*") if p.suffix in (".parquet", ".jsonl", ".json"))
    if not files:
        raise FileNotFoundError(f"mirror has no split files for dataset {path} ({name or DEFAULT_CONFIG}) in {folder}")
    builder = "parquet" if files[0].suffix == ".parquet" else "json"
    return datasets.load_dataset(builder, data_files={p.stem: str(p) for p in files})


def stage(manager, names, out, mirror=None):
    """Save everything building `names` fetches under `out` (from the network, or from `mirror`)."""
    import datasets

    wanted, urls, nltk = requirements(manager, names)
    out = Path(out)
    manifest = {"tasks": sorted(names), "source": str(mirror) if mirror else "network", "datasets": {}, "urls": {}}
    for path, name in wanted:
        loaded = _load_mirror_dataset(mirror, path, name) if mirror else datasets.load_dataset(path, name)
        target = _dataset_dir(out, path, name)
        target.mkdir(parents=True, exist_ok=True)
        for split, data in loaded.items():
            data.to_parquet(str(target / f"{split}.parquet"))
        manifest["datasets"][f"{path}|{name or ''}"] = sorted(loaded)
    for url in urls:
        target = out / "urls" / url.rsplit("/", 1)[-1]
        target.parent.mkdir(parents=True, exist_ok=True)
        if mirror:
            shutil.copyfile(Path(mirror) / "urls" / target.name, target)
        else:
            import requests

            response = requests.get(url, timeout=300)
            response.raise_for_status()
            target.write_bytes(response.content)
        manifest["urls"][url] = str(target.relative_to(out))
    if nltk:
        if mirror:
            shutil.copytree(Path(mirror) / "nltk_data", out / "nltk_data")
        else:
            import nltk as nltk_module

            nltk_module.download(NLTK_PACKAGE, download_dir=str(out / "nltk_data"))
        manifest["nltk_data"] = "nltk_data"
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def check_staged(staged, manager, names):
    """Raise before any model loads when something these tasks need was not staged."""
    if staged is None:
        raise ValueError("evaluation.staged_data is not set: suites of lm-eval's own tasks need `ard stage-eval-data`")
    manifest_path = Path(staged) / MANIFEST
    if not manifest_path.is_file():
        raise FileNotFoundError(f"missing {manifest_path}: run `ard stage-eval-data` on a networked machine")
    manifest = json.loads(manifest_path.read_text())
    wanted, urls, _ = requirements(manager, names)
    for path, name in wanted:
        if f"{path}|{name or ''}" not in manifest["datasets"]:
            raise FileNotFoundError(f"dataset {path} ({name or DEFAULT_CONFIG}) is not staged in {staged}")
    for url in urls:
        if url not in manifest["urls"]:
            raise FileNotFoundError(f"{url} is not staged in {staged}")


@contextlib.contextmanager
def offline(staged):
    """Answer lm-eval's dataset, URL and nltk fetches from a staged folder (hub calls that miss fail)."""
    import datasets

    staged = Path(staged)
    manifest = json.loads((staged / MANIFEST).read_text())
    hub_load = datasets.load_dataset

    def load_dataset(path, name=None, split=None, **kwargs):
        if path in LOCAL_BUILDERS or Path(str(path)).exists():
            return hub_load(path, name, split=split, **kwargs)
        key = f"{path}|{name or ''}"
        if key not in manifest["datasets"]:
            raise FileNotFoundError(f"dataset {path} ({name or DEFAULT_CONFIG}) is not staged in {staged}")
        folder = _dataset_dir(staged, path, name)
        files = {s: str(folder / f"{s}.parquet") for s in manifest["datasets"][key]}
        return hub_load("parquet", data_files=files, split=split)

    def download_json(url):
        return json.loads((staged / manifest["urls"][url]).read_text())

    patches = [(datasets, "load_dataset", load_dataset)]
    if manifest["urls"]:
        from lm_eval.tasks.ruler import qa_utils

        patches.append((qa_utils, "download_json", download_json))
    saved = [(module, attr, getattr(module, attr)) for module, attr, _ in patches]
    nltk_before = os.environ.get("NLTK_DATA")
    try:
        for module, attr, replacement in patches:
            setattr(module, attr, replacement)
        if "nltk_data" in manifest:
            os.environ["NLTK_DATA"] = str(staged / manifest["nltk_data"])
        yield
    finally:
        for module, attr, original in saved:
            setattr(module, attr, original)
        if nltk_before is None:
            os.environ.pop("NLTK_DATA", None)
        else:
            os.environ["NLTK_DATA"] = nltk_before
