# Predict one shard per job; aggregate the shards of a cohort into metrics.


rule predict:
    input:
        model="results/models/{experiment}/model.keras",
        shard=SHARD,
    output:
        "results/predictions/{experiment}/{cohort}/{shard}.tsv",
    threads: 1
    resources:
        mem_mb=get_mem_mb("predict"),
    log:
        "logs/predict/{experiment}/{cohort}/{shard}.log",
    benchmark:
        "benchmarks/predict/{experiment}/{cohort}/{shard}.tsv"
    shell:
        "boneage predict --model {input.model} --shard {input.shard} --out {output}"
        " --threads {threads} > {log} 2>&1"


rule aggregate:
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
