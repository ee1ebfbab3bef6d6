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
