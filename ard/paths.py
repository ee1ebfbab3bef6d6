"""The fixed output layout of one experiment, shared by the CLIs and the Snakemake rules."""
from pathlib import Path


class Layout:
    def __init__(self, outdir):
        self.root = Path(outdir)

    # data stage
    @property
    def data(self):
        return self.root / "data"

    @property
    def splits(self):
        return self.data / "splits"

    @property
    def tokenizer(self):
        return self.data / "tokenizer"

    @property
    def tokens(self):
        return self.data / "tokens"

    # models: the teacher is the variant native/none; a restored variant has one directory per seed
    @staticmethod
    def _run(scaling, restore, seed):
        return Path(scaling, restore) if seed is None else Path(scaling, restore, f"seed{seed}")

    def variant(self, scaling, restore, seed=None):
        return self.root / "variants" / self._run(scaling, restore, seed)

    def model(self, scaling, restore, seed=None):
        return self.variant(scaling, restore, seed) / "model"

    @property
    def teacher(self):
        return self.model("native", "none")

    def checkpoints(self, scaling, restore, seed):
        return self.root / "checkpoints" / self._run(scaling, restore, seed)

    # evaluation
    def evaldata(self, suite):
        return self.root / "evaldata" / suite

    def eval_result(self, scaling, restore, suite, seed=None):
        return self.root / "eval" / self._run(scaling, restore, seed) / f"{suite}.json"

    # report
    @property
    def summary_csv(self):
        return self.root / "summary.csv"

    @property
    def summary_md(self):
        return self.root / "summary.md"

    @property
    def summary_html(self):
        return self.root / "summary.html"

    @property
    def plots(self):
        return self.root / "plots"

    @property
    def resolved_config(self):
        return self.root / "config.yaml"

    @property
    def config_used(self):
        return self.root / "report" / "config.yaml"
