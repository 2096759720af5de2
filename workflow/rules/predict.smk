# Predict one shard per job; aggregate the shards of a cohort into metrics.


rule predict:
    input:
        model="results/models/{experiment}/model.keras",
        shard=SHARD,
    output:
        "results/predictions/{experiment}/{cohort}/{shard}.tsv",
    params:
        tta="--tta" if config["aggregate"]["tta"] else "",
    threads: 1
    resources:
        mem_mb=get_mem_mb("predict"),
    log:
        "logs/predict/{experiment}/{cohort}/{shard}.log",
    benchmark:
        "benchmarks/predict/{experiment}/{cohort}/{shard}.tsv"
    shell:
        "boneage predict --model {input.model} --shard {input.shard} --out {output}"
        " --threads {threads} {params.tta} > {log} 2>&1"


rule aggregate:
    wildcard_constraints:
        experiment="|".join(EXPERIMENTS),
    input:
        predictions=get_shard_predictions,
        split="results/cohorts/{cohort}/split.tsv",
        summary="results/models/{experiment}/train.json",
    output:
        predictions="results/predictions/{experiment}/{cohort}.tsv",
        metrics=report(
            "results/metrics/{experiment}/{cohort}.json",
            caption="../report/metrics.rst",
            category="Accuracy",
        ),
    params:
        trained=get_trained_flag,
    log:
        "logs/aggregate/{experiment}/{cohort}.log",
    benchmark:
        "benchmarks/aggregate/{experiment}/{cohort}.tsv"
    shell:
        "boneage aggregate --predictions {input.predictions} --split {input.split}"
        " --train-summary {input.summary} {params.trained}"
        " --cohort {wildcards.cohort} --experiment {wildcards.experiment}"
        " --out-tsv {output.predictions} --out-json {output.metrics} > {log} 2>&1"


rule ensemble:
    wildcard_constraints:
        ensemble="|".join(ENSEMBLES) or "(?!)",
    input:
        unpack(get_ensemble_members),
        split="results/cohorts/{cohort}/split.tsv",
    output:
        predictions="results/predictions/{ensemble}/{cohort}.tsv",
        metrics="results/metrics/{ensemble}/{cohort}.json",
    params:
        names=get_ensemble_names,
        trained=get_trained_flag,
    log:
        "logs/ensemble/{ensemble}/{cohort}.log",
    benchmark:
        "benchmarks/ensemble/{ensemble}/{cohort}.tsv"
    shell:
        "boneage ensemble --name {wildcards.ensemble} --member-names {params.names}"
        " --members {input.members} --train-summaries {input.summaries}"
        " --split {input.split} {params.trained} --cohort {wildcards.cohort}"
        " --out-tsv {output.predictions} --out-json {output.metrics} > {log} 2>&1"
