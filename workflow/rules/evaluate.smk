rule evaldata:
    input:
        data=L.data,
    output:
        directory(str(L.evaldata("{suite}"))),
    params:
        fingerprint=lambda w: fingerprint("evaluation", "seed", config["teacher"]),
    log:
        log_path("evaldata", "{suite}"),
    benchmark:
        benchmark_path("evaldata", "{suite}")
    shell:
        "ard evaldata --config {CONFIG} --suite {wildcards.suite} --data {input.data} --out {output} > {log} 2>&1"


rule evaluate:
    wildcard_constraints:
        scaling="|".join(map(re.escape, ["native", *SCALINGS])),
        restore="|".join(map(re.escape, ["none", *RESTORES])),
    input:
        model=str(L.model("{scaling}", "{restore}")),
        evaldata=str(L.evaldata("{suite}")),
    output:
        str(L.eval_result("{scaling}", "{restore}", "{suite}")),
    params:
        fingerprint=fingerprint("evaluation"),
    log:
        log_path("evaluate", "{scaling}", "{restore}", "{suite}"),
    benchmark:
        benchmark_path("evaluate", "{scaling}", "{restore}", "{suite}")
    threads: config["threads"]
    shell:
        "ard evaluate --config {CONFIG} --suite {wildcards.suite} --model {input.model}"
        " --evaldata {input.evaldata} --out {output} > {log} 2>&1"
