# The summary, its figures and the config they came from are marked for `snakemake --report`.
rule report:
    input:
        eval_results,
        restore_infos,
    output:
        csv=report(L.summary_csv, category="Summary", labels={"table": "summary.csv (every row and column)"}),
        md=L.summary_md,
        html=report(L.summary_html, category="Summary", labels={"table": "summary (per suite, mean ± 95 % interval)"}),
    params:
        fingerprint=fingerprint("experiment"),
    log:
        log_path("report", "report"),
    benchmark:
        benchmark_path("report", "report")
    resources:
        **job_resources("report"),
    shell:
        "{ARD} report --config {CONFIG} --out-csv {output.csv} --out-md {output.md} --out-html {output.html} > {log} 2>&1"


rule plots:
    input:
        summary=L.summary_csv,
        train_logs=train_logs,
    output:
        report(directory(L.plots), patterns=["{name}.png"], category="Figures", labels={"figure": "{name}"}),
    params:
        variants=L.root / "variants",
    log:
        log_path("report", "plots"),
    benchmark:
        benchmark_path("report", "plots")
    resources:
        **job_resources("report"),
    shell:
        "{ARD} plots --summary {input.summary} --variants {params.variants} --out {output} > {log} 2>&1"


# The config as Snakemake resolved it (written before any job), kept beside the summary for the report.
rule config_used:
    input:
        CONFIG,
    output:
        report(L.config_used, category="Config", labels={"file": "config.yaml"}),
    resources:
        **job_resources("report"),
    shell:
        "cp {input} {output}"
