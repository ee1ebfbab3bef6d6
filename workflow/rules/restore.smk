from ard import restore_methods


rule restore:
    input:
        teacher=L.teacher,
        student=str(L.model("{scaling}", "none")),
        data=L.data,
    output:
        model=directory(str(L.model("{scaling}", "{restore}"))),
        adapter=directory(str(L.variant("{scaling}", "{restore}") / "adapter")),
        train_log=str(L.variant("{scaling}", "{restore}") / "train_log.csv"),
        info=str(L.variant("{scaling}", "{restore}") / "restore.json"),
    params:
        # A sequence (e.g. linearard+cpt) depends on its stages' sections too.
        fingerprint=lambda w: fingerprint(
            restore_methods.fingerprint_sections(config, w.restore), ard_config.scaling_spec(config, w.scaling), "seed"
        ),
        variant_dir=lambda w: str(L.variant(w.scaling, w.restore)),
        checkpoints=lambda w: str(L.checkpoints(w.scaling, w.restore)),
    log:
        log_path("restore", "{scaling}", "{restore}"),
    benchmark:
        benchmark_path("restore", "{scaling}", "{restore}")
    threads: config["threads"]
    shell:
        "{ARD} restore --config {CONFIG} --method {wildcards.restore} --scaling {wildcards.scaling}"
        " --teacher {input.teacher} --student {input.student} --data {input.data}"
        " --checkpoints {params.checkpoints} --out {params.variant_dir} > {log} 2>&1"
