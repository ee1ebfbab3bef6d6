"""`ard <stage> ...`: one entry point that forwards to each stage module's own CLI."""
import importlib
import sys

# stage name -> module; each module exposes main(argv) with its own argparse.
STAGES = {
    "data": "ard.data",
    "teacher": "ard.teacher",
    "scale": "ard.scale",
    "restore": "ard.restore",
    "evaldata": "ard.evaldata",
    "evaluate": "ard.evaluate",
    "stage-eval-data": "ard.stage_eval_data",
    "report": "ard.report",
    "plots": "ard.plots",
    "part": "ard.part",
}


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in STAGES:
        print("usage: ard <stage> [options]   (ard <stage> --help for a stage's options)")
        print("stages: " + ", ".join(STAGES))
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    module = importlib.import_module(STAGES[argv[0]])
    return module.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
