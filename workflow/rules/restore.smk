from ard import restore_methods


# One job per (scaling, restore, seed): changing the seed list runs only the seeds that are new.
rule restore:
    input:
        teacher=L.teacher,
        student=str(L.model("{scaling}", "none")),
        data=L.data,
    output:
        model=directory(str(L.model("{scaling}", "{restore}", "{seed}"))),
        adapter=directory(str(L.variant("{scaling}", "{restore}", "{seed}") / "adapter")),
        train_log=str(L.variant("{scaling}", "{restore}", "{seed}") / "train_log.csv"),
        info=str(L.variant("{scaling}", "{restore}", "{seed}") / "restore.json"),
    params:
        # A sequence (e.g. linearard+cpt) depends on its stages' sections too.
        fingerprint=lambda w: fingerprint(
            restore_methods.fingerprint_sections(config, w.restore), ard_config.scaling_spec(config, w.scaling)
        ),
        variant_dir=lambda w: str(L.variant(w.scaling, w.restore, w.seed)),
        checkpoints=lambda w: str(L.checkpoints(w.scaling, w.restore, w.seed)),
        launcher=lambda w: restore_launcher(w.restore),
    log:
        log_path(*RECORDS.restore_job("{scaling}", "{restore}", "{seed}")),
    benchmark:
        benchmark_path(*RECORDS.restore_job("{scaling}", "{restore}", "{seed}"))
    threads: config["threads"]
    priority: restore_priority
    resources:
        **job_resources("restore", gpu=lambda w: config["restore"][w.restore]["gpus"]),
    shell:
        "{params.launcher} restore --config {CONFIG} --method {wildcards.restore} --scaling {wildcards.scaling} --seed {wildcards.seed}"
        " --teacher {input.teacher} --student {input.student} --data {input.data}"
        " --checkpoints {params.checkpoints} --out {params.variant_dir} > {log} 2>&1"
