rule data:
    output:
        directory(L.data),
    params:
        fingerprint=fingerprint("data", "seed"),
    log:
        log_path("data", "data"),
    benchmark:
        benchmark_path("data", "data")
    threads: config["threads"]
    shell:
        "{ARD} data --config {CONFIG} --out {output} > {log} 2>&1"
