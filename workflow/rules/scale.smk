rule scale:
    input:
        teacher=L.teacher,
    output:
        directory(str(L.model("{scaling}", "none"))),
    params:
        fingerprint=lambda w: fingerprint(ard_config.scaling_spec(config, w.scaling)),
    log:
        log_path("scale", "{scaling}"),
    benchmark:
        benchmark_path("scale", "{scaling}")
    resources:
        **job_resources("scale"),
    shell:
        "{ARD} scale --config {CONFIG} --scaling {wildcards.scaling} --teacher {input.teacher} --out {output} > {log} 2>&1"
