# A pretrained teacher trains on the data stage's tokens; a real one (gguf, path) needs nothing and
# comes first, since the data stage then tokenises with the teacher's own tokenizer.
rule teacher:
    input:
        data=[] if REAL_TEACHER else L.data,
    output:
        directory(L.teacher),
    params:
        fingerprint=fingerprint("teacher", "seed"),
        data_arg="" if REAL_TEACHER else f"--data {L.data}",
    log:
        log_path("teacher", "teacher"),
    benchmark:
        benchmark_path("teacher", "teacher")
    threads: config["threads"]
    resources:
        **job_resources("teacher", gpu=0 if REAL_TEACHER else 1),
    shell:
        "{ARD} teacher --config {CONFIG} {params.data_arg} --out {output} > {log} 2>&1"
