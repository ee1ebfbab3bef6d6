"""The fixed output layout of one experiment, shared by the CLIs and the Snakemake rules: its outputs
under the outdir (Layout), and its jobs' logs and benchmarks under the working folder (JobRecords)."""
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


class JobRecords:
    """Each job's log (logs/<experiment>/<rule>/...log) and benchmark (benchmarks/<experiment>/...tsv).
    The run jobs' parts may be Snakemake wildcards ("{scaling}"): the rules name their records with them."""

    def __init__(self, experiment):
        self.experiment = experiment

    def log(self, rule_name, *parts):
        return f"logs/{self.experiment}/{rule_name}/" + "/".join(parts) + ".log"

    def benchmark(self, rule_name, *parts):
        return f"benchmarks/{self.experiment}/{rule_name}/" + "/".join(parts) + ".tsv"

    @staticmethod
    def restore_job(scaling, restore, seed):
        return ("restore", *Layout._run(scaling, restore, seed).parts)

    @staticmethod
    def evaluate_job(scaling, restore, suite, seed=None):
        return ("evaluate", *Layout._run(scaling, restore, seed).parts, suite)

    def of_run(self, scaling, restore, seed, suites):
        """The records of one run's own jobs: its restore (when restored) and its evaluations."""
        jobs = [self.evaluate_job(scaling, restore, suite, seed) for suite in suites]
        if restore != "none":
            jobs.insert(0, self.restore_job(scaling, restore, seed))
        return [Path(record(*job)) for job in jobs for record in (self.log, self.benchmark)]
