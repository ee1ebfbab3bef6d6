rule teacher:
    input:
        data=L.data,
    output:
        directory(L.teacher),
    params:
        fingerprint=fingerprint("teacher", "seed"),
    log:
        log_path("teacher", "teacher"),
    benchmark:
        benchmark_path("teacher", "teacher")
    threads: config["threads"]
    shell:
        "{ARD} teacher --config {CONFIG} --data {input.data} --out {output} > {log} 2>&1"
