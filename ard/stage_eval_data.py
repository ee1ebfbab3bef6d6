"""`ard stage-eval-data`: fetch the data of a config's lm-eval suites into a folder, for offline evaluation.

Run it once on a machine with network (same lm-eval version), copy the folder next to the pipeline,
and point `evaluation.staged_data` at it; `ard evaluate` then reads every dataset, RULER's SQuAD and
HotpotQA JSON, the essay haystack and nltk's punkt_tab from there:

    ard stage-eval-data --config config/<real>.yaml --out eval_staged/

--mirror DIR stages from files fetched by hand instead (layout in ard/evaluation/staging.py). Suites of the
config with source: local need nothing staged and are skipped.
"""

from ard import config as ard_config
from ard.evaluation.staging import stage
from ard.evaluation.suites import check_tasks, load_suite, task_manager
from ard.io import atomic_dir
from ard.paths import Layout
from ard.runtime import stage_main, stage_parser


@stage_main
def main(argv=None):
    parser = stage_parser("ard stage-eval-data", __doc__)
    parser.add_argument("--config", required=True, help="experiment config (YAML)")
    parser.add_argument("--out", required=True, help="staging folder, replaced atomically")
    parser.add_argument("--suites", nargs="+", help="suite names (default: the config's evaluation.suites)")
    parser.add_argument("--mirror", help="read files fetched by hand from this folder instead of the network")
    args = parser.parse_args(argv)

    config = ard_config.load(args.config)
    teacher_dir = Layout(config["outdir"]).teacher
    native = ard_config.native_context(config, teacher_dir if teacher_dir.is_dir() else None)
    suites = [load_suite(name, config, native) for name in args.suites or config["evaluation"]["suites"]]
    suites = [suite for suite in suites if suite.source == "lm_eval"]
    if not suites:
        raise ValueError("no suite with source: lm_eval among the suites asked for: nothing to stage")
    manager = task_manager(suites[0])
    names = []
    for suite in suites:
        check_tasks(suite, manager)
        names += suite.task_names
    with atomic_dir(args.out) as tmp:
        manifest = stage(manager, names, tmp, mirror=args.mirror)
    print(f"staged {len(manifest['datasets'])} datasets and {len(manifest['urls'])} files into {args.out}")
