# Deterministic train/val/test split by patient.


rule split:
    input:
        manifest="results/cohorts/{cohort}/manifest.tsv",
    output:
        "results/cohorts/{cohort}/split.tsv",
    log:
        "logs/split/{cohort}.log",
    benchmark:
        "benchmarks/split/{cohort}.tsv"
    params:
        seed=config["split"]["seed"],
        val=config["split"]["val"],
        test=config["split"]["test"],
    shell:
        "boneage split --manifest {input.manifest} --seed {params.seed}"
        " --val {params.val} --test {params.test} --out {output} > {log} 2>&1"
