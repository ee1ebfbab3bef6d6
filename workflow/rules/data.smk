rule data:
    input:
        teacher=L.teacher if REAL_TEACHER else [],
    output:
        directory(L.data),
    params:
        fingerprint=fingerprint("data", "seed"),
        teacher_arg=f"--teacher {L.teacher}" if REAL_TEACHER else "",
    log:
        log_path("data", "data"),
    benchmark:
        benchmark_path("data", "data")
    threads: config["threads"]
    resources:
        **job_resources("data"),
    shell:
        "{ARD} data --config {CONFIG} {params.teacher_arg} --out {output} > {log} 2>&1"
