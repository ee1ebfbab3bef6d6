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

    # models: the teacher is the variant native/none
    def variant(self, scaling, restore):
        return self.root / "variants" / scaling / restore

    def model(self, scaling, restore):
        return self.variant(scaling, restore) / "model"

    @property
    def teacher(self):
        return self.model("native", "none")

    def checkpoints(self, scaling, restore):
        return self.root / "checkpoints" / scaling / restore

    # evaluation
    def evaldata(self, suite):
        return self.root / "evaldata" / suite

    def eval_result(self, scaling, restore, suite):
        return self.root / "eval" / scaling / restore / f"{suite}.json"

    # report
    @property
    def summary_csv(self):
        return self.root / "summary.csv"

    @property
    def summary_md(self):
        return self.root / "summary.md"

    @property
    def plots(self):
        return self.root / "plots"

    @property
    def resolved_config(self):
        return self.root / "config.yaml"
