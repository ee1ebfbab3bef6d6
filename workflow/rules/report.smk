rule report:
    input:
        eval_results,
    output:
        csv=L.summary_csv,
        md=L.summary_md,
    params:
        fingerprint=fingerprint("experiment"),
    log:
        log_path("report", "report"),
    benchmark:
        benchmark_path("report", "report")
    shell:
        "{ARD} report --config {CONFIG} --out-csv {output.csv} --out-md {output.md} > {log} 2>&1"


rule plots:
    input:
        L.summary_csv,
    output:
        directory(L.plots),
    log:
        log_path("report", "plots"),
    benchmark:
        benchmark_path("report", "plots")
    shell:
        "{ARD} plots --summary {input} --out {output} > {log} 2>&1"
