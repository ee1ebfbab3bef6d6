# Evaluation: `evaldata` generates a suite's jsonl files once; `evaluate` scores every variant on it.
# Both also read eval_configs/ (the suite lists and the lm-eval task YAMLs), so edits there rerun them.
EVAL_CONFIG_FILES = sorted(
    str(p) for p in (ard_config.REPO_ROOT / "eval_configs").rglob("*") if p.is_file() and "__pycache__" not in p.parts
)


rule evaldata:
    input:
        data=L.data,
        eval_configs=EVAL_CONFIG_FILES,
    output:
        directory(str(L.evaldata("{suite}"))),
    params:
        fingerprint=lambda w: fingerprint(ard_config.suite_evaluation(config, w.suite), "seed", config["teacher"]),
    log:
        log_path("evaldata", "{suite}"),
    benchmark:
        benchmark_path("evaldata", "{suite}")
    priority: EVALDATA_PRIORITY
    resources:
        **job_resources("evaldata"),
    shell:
        "{ARD} evaldata --config {CONFIG} --suite {wildcards.suite} --data {input.data} --out {output} > {log} 2>&1"


# One thread per job: on a small CPU two evaluations side by side beat one with two threads
# (lm-eval's per-request Python overhead and the imports do not parallelise).
EVALUATE = (
    "{ARD} evaluate --config {CONFIG} --suite {wildcards.suite} --model {input.model}"
    " --evaldata {input.evaldata} --out {output} --threads {threads} > {log} 2>&1"
)


# The teacher and each scaling as it is: one evaluation each.
rule evaluate:
    wildcard_constraints:
        scaling="|".join(map(re.escape, ["native", *SCALINGS])),
    input:
        model=str(L.model("{scaling}", "none")),
        evaldata=str(L.evaldata("{suite}")),
        eval_configs=EVAL_CONFIG_FILES,
    output:
        str(L.eval_result("{scaling}", "none", "{suite}")),
    params:
        fingerprint=lambda w: fingerprint(ard_config.suite_evaluation(config, w.suite), "seed"),
    log:
        log_path(*RECORDS.evaluate_job("{scaling}", "none", "{suite}")),
    benchmark:
        benchmark_path(*RECORDS.evaluate_job("{scaling}", "none", "{suite}"))
    threads: 1
    priority: evaluation_priority
    resources:
        **job_resources("evaluate", gpu=1),
    shell:
        EVALUATE


# A restored variant: one evaluation per restoration seed.
use rule evaluate as evaluate_restored with:
    input:
        model=str(L.model("{scaling}", "{restore}", "{seed}")),
        evaldata=str(L.evaldata("{suite}")),
        eval_configs=EVAL_CONFIG_FILES,
    output:
        str(L.eval_result("{scaling}", "{restore}", "{suite}", "{seed}")),
    log:
        log_path(*RECORDS.evaluate_job("{scaling}", "{restore}", "{suite}", "{seed}")),
    benchmark:
        benchmark_path(*RECORDS.evaluate_job("{scaling}", "{restore}", "{suite}", "{seed}"))
