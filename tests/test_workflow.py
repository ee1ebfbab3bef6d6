"""The whole DAG on a tiny config: summary rows, a no-op rerun, and reruns limited to what a change touches."""
import re
import shutil

import pandas as pd
import pytest
import yaml

from ard import plots
from helpers import REPO, snakemake, write_config

pytestmark = pytest.mark.slow


def _planned_jobs(dry_run_output):
    """Job counts from the 'Job stats' table of a dry run."""
    table = dry_run_output.split("Job stats:")[1].split("total")[0]
    return {name: int(count) for name, count in re.findall(r"^(\w+)\s+(\d+)$", table, flags=re.M)}


def test_summary_has_every_variant_task_and_length(finished_run):
    workdir, _, config = finished_run
    summary = pd.read_csv(workdir / "results" / "summary.csv")
    assert set(summary.variant) == {"native/none", "linear-2x/none", "linear-2x/linearard"}
    assert set(summary[summary.row_type == "per_seed"].seed) == {0, 1, 2}
    short = summary[summary.context_length.isna()]
    assert short.task.nunique() >= 2
    long = summary[summary.context_length.notna()]
    assert long.context_length.nunique() >= 2
    assert summary.value.notna().all()
    perplexity = summary[summary.metric.str.contains("perplexity")]
    assert len(perplexity) and (perplexity.value > 1).all() and perplexity.value.map(float).lt(float("inf")).all()
    assert (summary.experiment == "tiny").all() and (summary.config_sha.str.len() == 12).all()
    linearard = summary[summary.variant == "linear-2x/linearard"]
    assert (linearard.train_tokens > 0).all()
    assert (workdir / "results" / "summary.md").read_text().count("linear-2x/linearard") >= 1
    figures = [p.name for p in (workdir / "results" / "plots").iterdir() if not p.name.startswith(".")]  # not Snakemake's marker
    assert sorted(figures) == sorted([*plots.FIGURES, plots.TRAINING])


def test_three_seeds_aggregate_with_intervals_holding_every_seed(finished_run):
    workdir, _, _ = finished_run
    summary = pd.read_csv(workdir / "results" / "summary.csv")
    restored = summary[summary.restore == "linearard"]
    per_seed = restored[restored.row_type == "per_seed"].groupby(["suite", "task", "metric", "context_length"], dropna=False)
    aggregate = restored[restored.row_type == "aggregate"].set_index(["suite", "task", "metric", "context_length"])
    assert (aggregate.n_seeds == 3).all() and (aggregate.ci_method == "t_over_seeds").all()
    for key, seeds in per_seed:
        row = aggregate.loc[key]
        assert len(seeds) == 3 and row["mean"] == pytest.approx(seeds.value.mean())
        assert ((row.ci95_low - 1e-12 <= seeds.value) & (seeds.value <= row.ci95_high + 1e-12)).all(), key
    # a p-value for every restored aggregate row with per-sample scores, and Holm's verdict beside it
    tested = aggregate.dropna(subset=["better_than_none_p"])
    assert len(tested) and tested.better_than_none_p.between(0, 1).all()
    assert tested.better_than_none_significant.isin([True, False]).all()


def test_rerun_right_after_does_nothing(finished_run):
    workdir, configfile, _ = finished_run
    result = snakemake(workdir, configfile)
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


@pytest.mark.parametrize("where", ["config", "restore"])
def test_adding_a_seed_runs_only_that_seed(finished_run, where):
    """To the config's seeds, or to the restore's own (which stay out of its jobs' fingerprint)."""
    workdir, _, config = finished_run
    if where == "config":
        config = {**config, "seeds": [0, 1, 2, 3]}
    else:
        linearard = {**config["restore"]["linearard"], "seeds": [0, 1, 2, 3]}
        config = {**config, "restore": {**config["restore"], "linearard": linearard}}
    configfile = write_config(workdir / "more-seeds.yaml", config)
    result = snakemake(workdir, configfile, "-n")
    assert result.returncode == 0, result.stderr[-2000:]
    jobs = _planned_jobs(result.stdout + result.stderr)
    suites = yaml.safe_load((workdir / "results" / "config.yaml").read_text())["evaluation"]["suites"]
    assert "seed=3" in result.stdout + result.stderr and "seed=0" not in result.stdout + result.stderr
    assert jobs.pop("restore") == 1 and jobs.pop("evaluate_restored") == len(suites)
    assert jobs.pop("report") == 1 and jobs.pop("plots") == 1 and jobs.pop("all") == 1
    jobs.pop("config_used", None)  # the resolved config changed with the seed list
    assert jobs == {}, f"unexpected jobs rerun: {jobs}"


def test_changing_one_suite_reruns_only_that_suites_evaluations(finished_run):
    workdir, _, config = finished_run
    suites = yaml.safe_load((workdir / "results" / "config.yaml").read_text())["evaluation"]["suites"]
    assert "short" in suites and len(suites) > 1
    evaluation = {**config["evaluation"], "overrides": {"short": {"limit": 3}}}
    configfile = write_config(workdir / "short-limit.yaml", {**config, "evaluation": evaluation})
    result = snakemake(workdir, configfile, "-n")
    assert result.returncode == 0, result.stderr[-2000:]
    output = result.stdout + result.stderr
    jobs = _planned_jobs(output)
    assert jobs.pop("evaldata") == 1 and jobs.pop("evaluate") == 2 and jobs.pop("evaluate_restored") == 3
    assert jobs.pop("report") == 1 and jobs.pop("plots") == 1 and jobs.pop("all") == 1
    jobs.pop("config_used", None)
    assert jobs == {}, f"unexpected jobs rerun: {jobs}"
    assert set(re.findall(r"suite=(\w+)", output)) == {"short"}


def test_report_html_shows_the_table_and_figures_in_a_browser(finished_run):
    """`snakemake --report`, opened in headless Chromium (Debian's, driven by Playwright): each figure shows
    as an image, the summary as a table of every variant, and the config is listed."""
    from playwright.sync_api import sync_playwright

    workdir, configfile, _ = finished_run
    html = workdir / "results" / "report.html"
    result = snakemake(workdir, configfile, "--report", str(html))
    assert result.returncode == 0, result.stderr[-3000:]
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is not installed (scripts/install.sh --test installs it)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"])
        page = browser.new_page()
        page.goto(html.as_uri())

        def view(category, entry):
            """Open a result of the report: its category, then the view button of its row."""
            page.get_by_text("Results", exact=True).first.click()
            page.get_by_text(category, exact=True).first.click()
            page.locator("tr", has_text=entry).locator("a[href='#']").first.click()
            page.wait_for_timeout(300)

        for figure in (*[name.removesuffix(".png") for name in plots.FIGURES], "training_curves"):
            view("Figures", figure)
            assert page.locator(f"img[src^='data:image/png'][src*='filename={figure}.png']").count() == 1, figure
        view("Summary", "per suite")
        table = page.frame_locator("iframe").locator("table").first
        for variant in ("native/none", "linear-2x/none", "linear-2x/linearard"):
            assert variant in table.inner_text()
        page.get_by_text("Results", exact=True).first.click()
        page.get_by_text("Config", exact=True).first.click()
        assert page.locator("tr", has_text="config.yaml").count() == 1
        browser.close()
