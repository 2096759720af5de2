# Train one model per experiment on the training cohorts; `snakemake train` builds all.


rule train_model:
    input:
        index=expand("results/cohorts/{cohort}/index.json", cohort=config["train_cohorts"]),
        split=expand("results/cohorts/{cohort}/split.tsv", cohort=config["train_cohorts"]),
    output:
        model="results/models/{experiment}/model.keras",
        history=report(
            "results/models/{experiment}/history.tsv",
            caption="../report/history.rst",
            category="Training",
        ),
        summary="results/models/{experiment}/train.json",
    params:
        experiment=get_experiment_json,
    # One process uses every core it is given (intra-op threads).
    threads: workflow.cores
    resources:
        mem_mb=get_mem_mb("train"),
    log:
        "logs/train/{experiment}.log",
    benchmark:
        "benchmarks/train/{experiment}.tsv"
    shell:
        "boneage train --name {wildcards.experiment} --experiment {params.experiment:q}"
        " --index {input.index} --split {input.split}"
        " --out-dir results/models/{wildcards.experiment} --threads {threads} > {log} 2>&1"


rule train:
    input:
        expand("results/models/{experiment}/model.keras", experiment=EXPERIMENTS),
