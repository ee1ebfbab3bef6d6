"""Every shipped config validates and plans its DAG (a dry run: nothing is loaded from a hub); named
restore variants and per-restore seeds and scalings resolve, fail and plan as documented."""
import copy
import re

import pytest
import yaml

from ard import config as ard_config
from ard import restore_methods
from helpers import REPO, snakemake, write_config

CONFIGS = sorted((REPO / "config").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_plans_every_variant(tmp_path, path):
    # A --configfile is complete on its own: nothing of config/default.yaml is merged into it.
    config = ard_config.load(path)
    result = snakemake(tmp_path, path, "-n")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    output = result.stdout + result.stderr
    resolved = ard_config.load(tmp_path / ard_config.yaml.safe_load(path.read_text()).get("outdir", "results") / "config.yaml")
    runs = ard_config.runs(resolved)
    planned = [job for job in re.split(r"^(?=rule \w+:$)", output, flags=re.M) if job.startswith("rule ")]
    restores = [job for job in planned if job.startswith("rule restore:")]
    evaluations = [job for job in planned if job.startswith(("rule evaluate:", "rule evaluate_restored:"))]
    assert len(evaluations) == len(runs) * len(resolved["evaluation"]["suites"])
    assert len(restores) == sum(restore != "none" for _, restore, _ in runs)
    # Scheduling: the longest restores first (a restore's priority is its planned tokens), every
    # evaluation before any restore, the evaluations run by run, each run's suites in the config's
    # order, and the suites' evaluation data before them all. Snakemake prints no priority line for 0
    # (a restore bounded by steps).
    priority = {job: int(m.group(1)) if (m := re.search(r"^\s+priority: (\d+)$", job, flags=re.M)) else 0
                for job in planned}
    for job in restores:
        restore = re.search(r"restore=([^,\s]+)", job).group(1)
        assert priority[job] == restore_methods.planned_tokens(resolved, restore)
    assert min(priority[job] for job in evaluations) > max((priority[job] for job in restores), default=0)
    suites = resolved["evaluation"]["suites"]
    run_order = [(scaling, restore, seed, suite) for scaling, restore, seed in runs for suite in suites]

    def evaluation_job(job):
        wildcards = dict(re.findall(r"(\w+)=([^,\s]+)", re.search(r"wildcards: (.*)", job).group(1)))
        seed = wildcards.get("seed")
        return wildcards["scaling"], wildcards.get("restore", "none"), seed and int(seed), wildcards["suite"]

    assert [evaluation_job(job) for job in sorted(evaluations, key=priority.get, reverse=True)] == run_order
    evaldata = [job for job in planned if job.startswith("rule evaldata:")]
    assert evaldata and min(priority[job] for job in evaldata) > max(priority[job] for job in evaluations)
    assert resolved == config


def test_matrix_lists_every_scaling_and_restore(tmp_path):
    result = snakemake(tmp_path, REPO / "config" / "matrix.yaml", "-n")
    planned = set(re.findall(r"wildcards: scaling=([\w.-]+), restore=([\w.+-]+)", result.stdout + result.stderr))
    scalings = {f"{kind}-4x" for kind in ("linear", "dynamic", "yarn", "longrope", "llama3", "abf")}
    restores = {"linearard", "cpt", "longred", "logits_kd", "linearard+cpt"}
    assert {(s, r) for s in scalings for r in restores} <= planned


def test_command_line_values_inside_lists_and_mappings_are_read_as_yaml():
    overrides = {"scalings": [{"type": "linear", "factor": "0.5"}], "restore": {"linearard": {"steps": "30", "lr": "3e-3",
                 "gradient_checkpointing": "true", "seq_len": "null", "lora": {"target_modules": ["q_proj"]}}},
                 "experiment": "007", "threads": 2}
    typed = ard_config.typed_overrides(overrides)
    assert typed["scalings"] == [{"type": "linear", "factor": 0.5}]
    assert typed["restore"]["linearard"] == {"steps": 30, "lr": 0.003, "gradient_checkpointing": True, "seq_len": None,
                                             "lora": {"target_modules": ["q_proj"]}}
    assert typed["experiment"] == "007" and typed["threads"] == 2  # top-level values: Snakemake already typed them


# ------------------------------------------------------------------------ named restore variants


def _with_variants(restore, restores=("none", "cpt", "cpt-10x"), **top):
    return {"experiment": "v", "scalings": [{"type": "linear", "factor": 4}, {"type": "yarn", "factor": 4}],
            "restores": list(restores), "seeds": [0, 1, 2], "restore": restore, **top}


CPT_10X = {"cpt": {"lr": 1e-3, "token_budget": 1048576, "lora": {"rank": 4, "alpha": 8}},
           "cpt-10x": {"method": "cpt", "token_budget": 10485760, "seeds": [0], "scalings": ["linear-4x"],
                       "lora": {"alpha": 2}}}


def test_a_named_variant_is_its_base_section_with_its_own_keys_over_it():
    config = ard_config.validate(_with_variants(copy.deepcopy(CPT_10X)))
    variant, base = config["restore"]["cpt-10x"], config["restore"]["cpt"]
    assert variant["method"] == "cpt" and "method" not in base
    assert variant["lr"] == 1e-3 and variant["lora"]["rank"] == 4  # written in cpt's section
    assert variant["token_budget"] == 10485760 and variant["lora"]["alpha"] == 2  # its own win
    assert variant["batch_size"] == 2 and variant["lora"]["dropout"] == 0.05  # cpt's schema defaults
    assert base["token_budget"] == 1048576 and base["lora"]["alpha"] == 8 and base["seeds"] is None
    # Every stage re-validates the resolved config the workflow writes: the same config comes back.
    assert ard_config.validate(yaml.safe_load(yaml.safe_dump(config))) == config


def test_a_variant_of_a_sequence_runs_its_stages_on_the_stages_own_sections():
    config = ard_config.validate(_with_variants({"seq-long": {"method": "linearard+cpt", "lora": {"rank": 2}},
                                                 "cpt": {"steps": 7}}, restores=["none", "seq-long"]))
    assert restore_methods.base_method(config, "seq-long") == "linearard+cpt"
    plan = restore_methods.stage_plan(config, "seq-long")
    assert [(name, hp["steps"]) for name, hp in plan] == [("cpt", 7), ("linearard", 40)]
    assert restore_methods.model_spec(config, "seq-long")["lora"]["rank"] == 2


@pytest.mark.parametrize("restore, expected", [
    ({"cpt-10x": {"method": "cptt"}}, "config error at restore.cpt-10x.method: 'cptt' is not one of ['linearard', 'cpt', "
                                      "'longred', 'logits_kd', 'linearard+cpt']"),
    ({"cpt 10x": {"method": "cpt"}}, "config error at restore.cpt 10x: not a valid variant name"),
    ({"none": {"method": "cpt"}}, "config error at restore.none: not a valid variant name"),
    ({"cpt-10x": {"steps": 3}}, "config error at restore.cpt-10x: not a restore method (linearard, cpt, longred, "
                                "logits_kd, linearard+cpt); a named variant of one needs `method`"),
    ({"cpt-10x": {"method": "cpt", "relations": ["qq"]}}, "config error at restore.cpt-10x: unknown key 'relations'"),
    ({"cpt-10x": {"method": "cpt", "scalings": ["linear-4x", "linear-8x"]}},
     "config error at restore.cpt-10x.scalings.1: no scaling variant named linear-8x (the config's: linear-4x, yarn-4x)"),
    ({"cpt": {"seeds": [0, 0]}}, "config error at restore.cpt.seeds: [0, 0] has non-unique elements"),
], ids=["method", "name", "none", "no-method", "base-schema", "scaling", "seeds"])
def test_a_bad_variant_is_a_one_line_error_naming_its_key(restore, expected):
    with pytest.raises(ard_config.ConfigError) as error:
        ard_config.validate(_with_variants(restore, restores=["none"]))
    assert str(error.value).startswith(expected) and "\n" not in str(error.value)


def test_runs_follow_each_restores_seeds_and_scalings():
    config = ard_config.validate(_with_variants(copy.deepcopy(CPT_10X)))
    assert ard_config.variants(config) == [("native", "none"), ("linear-4x", "none"), ("linear-4x", "cpt"),
                                           ("linear-4x", "cpt-10x"), ("yarn-4x", "none"), ("yarn-4x", "cpt")]
    runs = ard_config.runs(config)
    assert [run for run in runs if run[1] == "cpt-10x"] == [("linear-4x", "cpt-10x", 0)]
    cpt = [(scaling, "cpt", seed) for scaling in ("linear-4x", "yarn-4x") for seed in (0, 1, 2)]
    assert [run for run in runs if run[1] == "cpt"] == cpt


def test_a_restores_seeds_and_scalings_leave_its_fingerprint_alone():
    def fingerprints(**cpt):
        restore = copy.deepcopy(CPT_10X)
        restore["cpt"].update(cpt)
        restore["cpt-10x"].pop("seeds")
        config = ard_config.validate(_with_variants(restore, restores=["none", "cpt", "cpt-10x", "linearard+cpt"]))
        return [restore_methods.fingerprint_sections(config, r) for r in ("cpt", "cpt-10x", "linearard+cpt")]

    unchanged = fingerprints()
    assert fingerprints(seeds=[0, 1, 2, 3], scalings=["yarn-4x"]) == unchanged  # cpt-10x inherits the seeds
    changed = fingerprints(lr=3e-4)
    assert all(new != old for new, old in zip(changed, unchanged))  # a hyperparameter reruns all three


def test_a_named_variant_is_planned_only_on_its_scalings_and_seeds(tmp_path):
    config = yaml.safe_load((REPO / "tests" / "configs" / "tiny.yaml").read_text())
    config.update(outdir=str(tmp_path / "results"), restores=["none", "linearard", "cpt-big"],
                  scalings=[{"type": "linear", "factor": 2}, {"type": "linear", "factor": 4}])
    config["restore"]["cpt-big"] = {"method": "cpt", "steps": 3, "seeds": [1], "scalings": ["linear-4x"]}
    result = snakemake(tmp_path, write_config(tmp_path / "variants.yaml", config), "-n")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    planned = set(re.findall(r"^\s+wildcards: scaling=(\S+), restore=(\S+), seed=(\d+)$", result.stdout, flags=re.M))
    linearard = {(f"linear-{f}x", "linearard", str(seed)) for f in (2, 4) for seed in (0, 1, 2)}
    assert planned == linearard | {("linear-4x", "cpt-big", "1")}
