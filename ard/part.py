"""`ard part`: run an experiment in parts on another machine (a shared GPU box, a lent accelerator) and
assemble the summary here from what each part brings back.

    ard part targets --config C [--variants linear-4x/none linear-4x/linearard linear-4x/cpt/seed2 ...]
        the files Snakemake builds for those variants (or single runs of one seed): every suite's
        evaluation, for every seed, and each restored run's restore.json and train_log.csv
        (`snakemake --cores N $(ard part targets ...)` on the GPU machine)
    ard part missing --config C [--variants ...]
        the runs (of those variants, default all) whose own outputs are not all here, as run labels on
        one line: the --variants of the next part (naming runs, not variants, so that no part redoes a
        seed that is already whole)
    ard part pack --config C --out part.tar.gz [--variants ...]
        the small outputs of the finished ones, for the trip back: evaluation results, restore.json and
        train_log.csv, teacher.json, scaling.json, data/meta.json, the evaluation manifests, and the
        experiment's logs and benchmarks (models and checkpoints stay behind; the config is the one here),
        and part.json: for each packed run, a digest of every config section its results depend on
    ard part unpack --config C part.tar.gz [...]
        puts them in place under the experiment's outdir here (and logs/, benchmarks/ in the current
        folder). A run restored again (another restore.json) is taken whole from its restoration with
        the most evaluated suites, its jobs' logs and benchmarks with it, never mixed; within one
        restoration, a result already here with other content is an error unless --replace (a run's log
        that differs is taken from the later copy; other files that differ, such as the teacher's log,
        keep the copy here), and so is a run made under other values of those sections than C's; nothing
        is written unless every archive passes
Then `ard report --config C ...` (or `snakemake` once every part is in) writes the summary.
"""
import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path

from ard import config as ard_config
from ard import restore_methods
from ard.paths import JobRecords, Layout
from ard.runtime import stage_main, stage_parser

SMALL_OUTPUTS = ("restore.json", "train_log.csv")
OUT = Path("out")  # the outdir's files inside an archive
MANIFEST = "part.json"  # the config digests of the packed runs, read by unpack and never extracted


def selected_runs(config, variants):
    """The config's (scaling, restore, seed) runs named in `variants` (all when None): a variant
    (linear-4x/cpt) names all its seeds, a run label (linear-4x/cpt/seed2) one of them."""
    runs = ard_config.runs(config)
    if variants:
        known = {f"{s}/{r}" for s, r, _ in runs}
        unknown = sorted(set(variants) - known - {run_label(*run) for run in runs})
        if unknown:
            raise ValueError(f"no variant or run {unknown[0]} in this experiment (variants: {', '.join(sorted(known))})")
        runs = [run for run in runs if f"{run[0]}/{run[1]}" in variants or run_label(*run) in variants]
    return runs


def run_outputs(config, scaling, restore, seed):
    """A run's own outputs: its evaluation results and, when restored, restore.json and train_log.csv
    (what must all come from one restoration of the run)."""
    layout = Layout(config["outdir"])
    paths = [layout.eval_result(scaling, restore, suite, seed) for suite in config["evaluation"]["suites"]]
    if restore != "none":
        paths += [layout.variant(scaling, restore, seed) / name for name in SMALL_OUTPUTS]
    return paths


def run_records(config, scaling, restore, seed):
    """The logs and benchmarks of a run's own jobs: they travel with its outputs, from one restoration."""
    return JobRecords(config["experiment"]).of_run(scaling, restore, seed, config["evaluation"]["suites"])


def targets(config, variants=None):
    return [str(path) for run in selected_runs(config, variants) for path in run_outputs(config, *run)]


def missing_runs(config, variants=None):
    """The selected runs whose own outputs are not all here (a run cut off part-way counts as missing)."""
    return [run for run in selected_runs(config, variants)
            if not all(path.is_file() for path in run_outputs(config, *run))]


def run_label(scaling, restore, seed):
    return f"{scaling}/{restore}" + ("" if seed is None else f"/seed{seed}")


def run_sections(config, scaling, restore):
    """{section: digest} of the config values one run's results depend on: what its rules' params track."""
    sections = {"seed": config["seed"], "teacher": config["teacher"], "data": config["data"],
                **{f"evaluation.{suite}": ard_config.suite_evaluation(config, suite)
                   for suite in config["evaluation"]["suites"]}}
    if scaling != ard_config.NATIVE:
        sections["scaling"] = ard_config.scaling_spec(config, scaling)
    if restore != "none":
        sections["restore"] = restore_methods.fingerprint_sections(config, restore)
    return {name: _digest(json.dumps(value, sort_keys=True).encode()) for name, value in sections.items()}


def packed_files(config, variants=None):
    """Every small output of the selected runs (and of the experiment) that exists, as paths."""
    layout = Layout(config["outdir"])
    files = [layout.data / "meta.json", layout.teacher / "teacher.json"]
    files += [layout.evaldata(suite) / "manifest.json" for suite in config["evaluation"]["suites"]]
    for scaling, restore, seed in selected_runs(config, variants):
        files += run_outputs(config, scaling, restore, seed)
        if restore == "none":
            files.append(layout.model(scaling, restore) / "scaling.json")
    for folder in (Path("logs") / config["experiment"], Path("benchmarks") / config["experiment"]):
        files += sorted(p for p in folder.rglob("*") if p.is_file())
    return [path for path in dict.fromkeys(files) if path.is_file()]


def pack(config, out, variants=None):
    from ard.io import atomic_file

    files = packed_files(config, variants)
    if not any("eval" in path.parts for path in files):
        raise ValueError("no finished evaluation among the selected variants: nothing to pack")
    manifest = {"experiment": config["experiment"],
                "runs": {run_label(*run): run_sections(config, *run[:2]) for run in selected_runs(config, variants)}}
    outdir = Path(config["outdir"])
    with atomic_file(out, "wb") as handle, tarfile.open(fileobj=handle, mode="w:gz") as tar:
        data = json.dumps(manifest, indent=1, sort_keys=True).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        for path in files:
            # outdir files travel as out/<path in outdir>: the parts of one experiment unpack into the
            # outdir of the machine that assembles them, wherever either machine keeps it
            tar.add(path, arcname=str(OUT / path.relative_to(outdir)) if path.is_relative_to(outdir) else str(path))
    return files


def _digest(data):
    return hashlib.sha256(data).hexdigest()


def _check_manifest(config, archive, manifest):
    """A run packed under other values of a section its results depend on is refused, naming them."""
    if manifest is None:
        print(f"{archive}: no {MANIFEST} (packed before parts recorded their config); its runs are not checked")
        return
    ours = {run_label(*run): run for run in ard_config.runs(config)}
    for label, sections in manifest["runs"].items():
        if label not in ours:
            continue  # a run this config no longer has: its files are never read
        # a suite on one side only is no conflict: its result is either not packed or not read
        differing = sorted(name for name, digest in run_sections(config, *ours[label][:2]).items()
                           if name in sections and sections[name] != digest)
        if differing:
            raise ValueError(f"{archive}: {label} was made under other `{'`, `'.join(differing)}` config values "
                             "than this config's (rerun it, or unpack with the config it was made with)")


def _read(config, archive):
    """[(member path, data)] of one archive, after checking every member and its config manifest."""
    allowed = [OUT, Path("logs") / config["experiment"], Path("benchmarks") / config["experiment"]]
    files, manifest = [], None
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            path = Path(member.name)
            if member.isfile() and member.name == MANIFEST:
                manifest = json.loads(tar.extractfile(member).read())
                continue
            if not member.isfile() or path.is_absolute() or ".." in path.parts or not any(
                path.is_relative_to(root) for root in allowed
            ):
                raise ValueError(f"{archive}: {member.name} is not an output of experiment {config['experiment']}")
            files.append((path, tar.extractfile(member).read()))
    _check_manifest(config, archive, manifest)
    return files


def _owners(config):
    """{path: run} of every run's own outputs (in the outdir) and its jobs' logs and benchmarks."""
    return {path: run for run in ard_config.runs(config)
            for path in run_outputs(config, *run) + run_records(config, *run)}


def _restorations(config, run, copies, replace):
    """Merge the copies of one run ([(source, {path: data})], oldest first) by restoration: copies with the
    same restore.json are one restoration (a differing result among them is an error unless `replace`,
    which takes the later one; a differing log or benchmark is a later attempt's, and the later copy is
    taken); a run restored again elsewhere is another. Returns
    [(suites evaluated, newest copy's order, its source, {path: data})], best last."""
    layout = Layout(config["outdir"])
    restore_json = layout.variant(*run) / "restore.json"
    records = set(run_records(config, *run))
    merged = {}
    for order, (source, files) in enumerate(copies):
        restoration = merged.setdefault(files.get(restore_json), {"files": {}})  # keyed by its restore.json
        for path, data in files.items():
            have = restoration["files"].get(path)
            if have is not None and not replace and have != data and path not in records:
                raise ValueError(f"{source}: {path} exists here with other content (--replace overwrites it)")
            restoration["files"][path] = data
        restoration.update(order=order, source=source)
    return sorted(((sum(path.is_relative_to(layout.root / "eval") for path in r["files"]), r["order"], r["source"], r["files"])
                   for r in merged.values()), key=lambda restoration: restoration[:2])


def unpack(config, archives, replace=False):
    """Extract parts: only regular files under out/ (→ the outdir), logs/<experiment>, benchmarks/<experiment>.
    Every archive is checked before anything is written. A run's own outputs come from one restoration of
    it: where the run was restored again (another restore.json, here or in a later archive), the
    restoration with the most evaluated suites is taken whole, the later one on a tie, and the other's
    files are dropped (removed here), never mixed; the logs and benchmarks of the run's jobs go with its
    outputs. Within one restoration, a result that differs is an error unless `replace`, and a run's log
    or benchmark that differs is taken from the later copy (a later attempt's); any other file that
    differs (the teacher's log, teacher.json's timing from a part on another machine) keeps the copy
    here. Returns (files written, files kept, runs dropped)."""
    owner = _owners(config)
    copies = {}  # run -> [(archive, {path: data})]
    planned, kept = {}, []

    def take_shared(path, data):
        here = planned[path] if path in planned else (path.read_bytes() if path.is_file() else None)
        if here is None or (replace and here != data):
            planned[path] = data
        elif here != data:
            kept.append(path)

    for archive in archives:
        from_archive = {}
        for member, data in _read(config, archive):
            path = Path(config["outdir"]) / member.relative_to(OUT) if member.is_relative_to(OUT) else member
            if path in owner:
                from_archive.setdefault(owner[path], {})[path] = data
            else:
                take_shared(path, data)
        for run, files in from_archive.items():
            outputs = set(run_outputs(config, *run))
            if outputs.intersection(files):
                copies.setdefault(run, []).append((archive, files))
            else:  # only the logs of jobs cut off before any output: no restoration to follow
                for path, data in files.items():
                    take_shared(path, data)
    dropped, removed = [], []
    for run, run_copies in copies.items():
        # only the runs an archive brings are read here: the copy here is the oldest; a run's logs and
        # benchmarks here belong to the restoration of its outputs here
        here = {path: path.read_bytes() for path in run_outputs(config, *run) if path.is_file()}
        if here:
            here.update((path, path.read_bytes()) for path in run_records(config, *run) if path.is_file())
        run_copies = ([("here", here)] if here else []) + run_copies
        *others, (suites, _, source, files) = _restorations(config, run, run_copies, replace)
        for other_suites, _, other_source, other_files in others:
            dropped.append(f"{run_label(*run)}: restored again in {source} ({suites} suites evaluated); "
                           f"dropped the restoration in {other_source} ({other_suites} suites)")
            removed += [path for path in other_files if other_source == "here" and path not in files]
        planned.update((path, data) for path, data in files.items() if here.get(path) != data)
    for path in removed:
        path.unlink()
    for path, data in planned.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return list(planned), kept, dropped


@stage_main
def main(argv=None):
    parser = stage_parser("ard part", __doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("targets", "missing", "pack", "unpack"):
        command = sub.add_parser(name)
        command.add_argument("--config", required=True, help="experiment config (YAML)")
        if name != "unpack":
            command.add_argument("--variants", nargs="+", help="variants, e.g. linear-4x/linearard, or runs, e.g. linear-4x/cpt/seed2 (default: all)")
    sub.choices["pack"].add_argument("--out", required=True, help="archive to write (.tar.gz)")
    sub.choices["unpack"].add_argument("archives", nargs="+", help="archives written by `ard part pack`")
    sub.choices["unpack"].add_argument("--replace", action="store_true", help="overwrite files that differ")
    args = parser.parse_args(argv)
    config = ard_config.load(args.config)
    if args.command == "targets":
        print("\n".join(targets(config, args.variants)))
    elif args.command == "missing":
        runs = missing_runs(config, args.variants)
        if runs:
            print(" ".join(run_label(*run) for run in runs))
        else:
            print("every selected run is whole here", file=sys.stderr)
    elif args.command == "pack":
        files = pack(config, Path(args.out), args.variants)
        print(f"packed {len(files)} files into {args.out}")
    else:
        files, kept, dropped = unpack(config, args.archives, args.replace)
        for line in dropped:
            print(line)
        print(f"unpacked {len(files)} files under {config['outdir']}"
              + (f"; kept {len(kept)} differing logs and shared outputs already here, e.g. {kept[0]}" if kept else ""))
