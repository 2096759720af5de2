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
        cpu_ranks=config["distributed"]["cpu_ranks"],
        controller=config["distributed"]["controller"],
    # The job's ranks share the cores it is given (intra-op threads split per rank).
    threads: workflow.cores
    resources:
        mem_mb=get_mem_mb("train"),
        tasks=get_train_ranks,
    log:
        "logs/train/{experiment}.log",
    benchmark:
        "benchmarks/train/{experiment}.tsv"
    shell:
        "boneage launch --ranks {resources.tasks} --cpu-ranks {params.cpu_ranks}"
        " --controller {params.controller} --"
        " boneage train --name {wildcards.experiment} --experiment {params.experiment:q}"
        " --index {input.index} --split {input.split}"
        " --out-dir results/models/{wildcards.experiment} --threads {threads} > {log} 2>&1"


rule train:
    input:
        expand("results/models/{experiment}/model.keras", experiment=EXPERIMENTS),
