"""`ard part`: run an experiment in parts on another machine (a shared GPU box, a lent accelerator) and
assemble the summary here from what each part brings back.

    ard part targets --config C [--variants linear-4x/none linear-4x/linearard ...]
        the files Snakemake builds for those variants: every suite's evaluation, for every seed, and each
        restored run's restore.json (`snakemake --cores N $(ard part targets ...)` on the GPU machine)
    ard part pack --config C --out part.tar.gz [--variants ...]
        the small outputs of the finished ones, for the trip back: evaluation results, restore.json and
        train_log.csv, teacher.json, scaling.json, data/meta.json, the evaluation manifests, and the
        experiment's logs and benchmarks (models and checkpoints stay behind; the config is the one here)
    ard part unpack --config C part.tar.gz [...]
        puts them in place under the experiment's outdir here (and logs/, benchmarks/ in the current
        folder); a file already here with other content is an error unless --replace
Then `ard report --config C ...` (or `snakemake` once every part is in) writes the summary.
"""
import hashlib
import tarfile
from pathlib import Path

from ard import config as ard_config
from ard.paths import Layout
from ard.runtime import stage_main, stage_parser

SMALL_OUTPUTS = ("restore.json", "train_log.csv")
OUT = Path("out")  # the outdir's files inside an archive


def selected_runs(config, variants):
    """The config's (scaling, restore, seed) runs whose variant is in `variants` (all when None)."""
    runs = ard_config.runs(config)
    if variants:
        known = {f"{s}/{r}" for s, r, _ in runs}
        unknown = sorted(set(variants) - known)
        if unknown:
            raise ValueError(f"no variant {unknown[0]} in this experiment (variants: {', '.join(sorted(known))})")
        runs = [run for run in runs if f"{run[0]}/{run[1]}" in variants]
    return runs


def targets(config, variants=None):
    layout = Layout(config["outdir"])
    out = []
    for scaling, restore, seed in selected_runs(config, variants):
        out += [layout.eval_result(scaling, restore, suite, seed) for suite in config["evaluation"]["suites"]]
        if restore != "none":
            out.append(layout.variant(scaling, restore, seed) / "restore.json")
    return [str(path) for path in out]


def packed_files(config, variants=None):
    """Every small output of the selected runs (and of the experiment) that exists, as paths."""
    layout = Layout(config["outdir"])
    files = [layout.data / "meta.json", layout.teacher / "teacher.json"]
    files += [layout.evaldata(suite) / "manifest.json" for suite in config["evaluation"]["suites"]]
    for scaling, restore, seed in selected_runs(config, variants):
        files += [layout.eval_result(scaling, restore, suite, seed) for suite in config["evaluation"]["suites"]]
        if restore == "none":
            files.append(layout.model(scaling, restore) / "scaling.json")
        else:
            files += [layout.variant(scaling, restore, seed) / name for name in SMALL_OUTPUTS]
    for folder in (Path("logs") / config["experiment"], Path("benchmarks") / config["experiment"]):
        files += sorted(p for p in folder.rglob("*") if p.is_file())
    return [path for path in dict.fromkeys(files) if path.is_file()]


def pack(config, out, variants=None):
    from ard.io import atomic_file

    files = packed_files(config, variants)
    if not any("eval" in path.parts for path in files):
        raise ValueError("no finished evaluation among the selected variants: nothing to pack")
    outdir = Path(config["outdir"])
    with atomic_file(out, "wb") as handle, tarfile.open(fileobj=handle, mode="w:gz") as tar:
        for path in files:
            # outdir files travel as out/<path in outdir>: the parts of one experiment unpack into the
            # outdir of the machine that assembles them, wherever either machine keeps it
            tar.add(path, arcname=str(OUT / path.relative_to(outdir)) if path.is_relative_to(outdir) else str(path))
    return files


def _digest(data):
    return hashlib.sha256(data).hexdigest()


def unpack(config, archives, replace=False):
    """Extract parts: only regular files under out/ (→ the outdir), logs/<experiment>, benchmarks/<experiment>."""
    allowed = [OUT, Path("logs") / config["experiment"], Path("benchmarks") / config["experiment"]]
    written = []
    for archive in archives:
        with tarfile.open(archive, "r:gz") as tar:
            members = tar.getmembers()
            for member in members:
                path = Path(member.name)
                if not member.isfile() or path.is_absolute() or ".." in path.parts or not any(
                    path.is_relative_to(root) for root in allowed
                ):
                    raise ValueError(f"{archive}: {member.name} is not an output of experiment {config['experiment']}")
            for member in members:
                path, data = Path(member.name), tar.extractfile(member).read()
                if path.is_relative_to(OUT):
                    path = Path(config["outdir"]) / path.relative_to(OUT)
                if path.is_file() and not replace and _digest(path.read_bytes()) != _digest(data):
                    raise ValueError(f"{archive}: {path} exists here with other content (--replace overwrites it)")
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                written.append(path)
    return written


@stage_main
def main(argv=None):
    parser = stage_parser("ard part", __doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("targets", "pack", "unpack"):
        command = sub.add_parser(name)
        command.add_argument("--config", required=True, help="experiment config (YAML)")
        if name != "unpack":
            command.add_argument("--variants", nargs="+", help="variants, e.g. linear-4x/linearard (default: all)")
    sub.choices["pack"].add_argument("--out", required=True, help="archive to write (.tar.gz)")
    sub.choices["unpack"].add_argument("archives", nargs="+", help="archives written by `ard part pack`")
    sub.choices["unpack"].add_argument("--replace", action="store_true", help="overwrite files that differ")
    args = parser.parse_args(argv)
    config = ard_config.load(args.config)
    if args.command == "targets":
        print("\n".join(targets(config, args.variants)))
    elif args.command == "pack":
        files = pack(config, Path(args.out), args.variants)
        print(f"packed {len(files)} files into {args.out}")
    else:
        files = unpack(config, args.archives, args.replace)
        print(f"unpacked {len(files)} files under {config['outdir']}")
