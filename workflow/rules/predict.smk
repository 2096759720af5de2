# Predict shards (one job per shard, or one MPI job per group of shards) sized by
# the node plan; aggregate the predictions of a cohort into metrics.


rule calibrate:
    input:
        model="results/models/{experiment}/model.keras",
        footprint="results/models/{experiment}/footprint.json",
        shard=get_calibration_shard,
    output:
        "results/models/{experiment}/calibration.json",
    log:
        "logs/calibrate/{experiment}.log",
    benchmark:
        "benchmarks/calibrate/{experiment}.tsv"
    threads: get_predict_threads
    resources:
        gpus=get_gpus("predict"),
        gres=get_gres("predict"),
        tasks_per_gpu=0,
        mem_mb=get_predict_mem_mb,
    params:
        args=PREDICT_ARGS,
    shell:
        "boneage calibrate --model {input.model} --shard {input.shard} --out {output}"
        " --threads {threads} {params.args} > {log} 2>&1"


rule predict:
    input:
        **PREDICT_SIZING,
        model="results/models/{experiment}/model.keras",
        shard=SHARD,
    output:
        "results/predictions/{experiment}/{cohort}/{shard}.tsv",
    log:
        "logs/predict/{experiment}/{cohort}/{shard}.log",
    benchmark:
        "benchmarks/predict/{experiment}/{cohort}/{shard}.tsv"
    threads: get_predict_threads
    resources:
        gpus=get_gpus("predict"),
        gres=get_gres("predict"),
        tasks_per_gpu=0,
        mem_mb=get_predict_mem_mb,
    params:
        args=PREDICT_ARGS,
    shell:
        "boneage predict --model {input.model} --shard {input.shard} --out {output}"
        " --threads {threads} {params.args} > {log} 2>&1"


rule predict_group:
    input:
        **PREDICT_SIZING,
        model="results/models/{experiment}/model.keras",
        shards=get_group_shards,
    output:
        "results/predictions/{experiment}/{cohort}/groups/{group}.tsv",
    log:
        "logs/predict/{experiment}/{cohort}/groups/{group}.log",
    benchmark:
        "benchmarks/predict/{experiment}/{cohort}/groups/{group}.tsv"
    # All its ranks' cores (local accounting); on Slurm, cpus_per_task per rank.
    threads: get_group_threads
    resources:
        mem_mb=get_group_mem_mb,
        tasks=get_group_tasks,
        cpus_per_task=get_predict_threads,
        mpi=get_group_mpi,
    params:
        args=PREDICT_ARGS,
    shell:
        "boneage launch --mpi --ranks {resources.tasks} --launcher={resources.mpi:q} --"
        " boneage predict-group --ranks {resources.tasks} --model {input.model}"
        " --shards {input.shards} --out {output}"
        " --threads {resources.cpus_per_task} {params.args} > {log} 2>&1"


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
    log:
        "logs/aggregate/{experiment}/{cohort}.log",
    benchmark:
        "benchmarks/aggregate/{experiment}/{cohort}.tsv"
    wildcard_constraints:
        experiment="|".join(EXPERIMENTS),
    resources:
        mem_mb=get_cohort_mem_mb,
    params:
        trained=get_trained_flag,
    shell:
        "boneage aggregate --predictions {input.predictions} --split {input.split}"
        " --train-summary {input.summary} {params.trained}"
        " --cohort {wildcards.cohort} --experiment {wildcards.experiment}"
        " --out-tsv {output.predictions} --out-json {output.metrics} > {log} 2>&1"


rule ensemble:
    input:
        unpack(get_ensemble_members),
        split="results/cohorts/{cohort}/split.tsv",
    output:
        predictions="results/predictions/{ensemble}/{cohort}.tsv",
        metrics="results/metrics/{ensemble}/{cohort}.json",
    log:
        "logs/ensemble/{ensemble}/{cohort}.log",
    benchmark:
        "benchmarks/ensemble/{ensemble}/{cohort}.tsv"
    wildcard_constraints:
        ensemble="|".join(ENSEMBLES) or "(?!)",
    resources:
        mem_mb=get_cohort_mem_mb,
    params:
        names=get_ensemble_names,
        trained=get_trained_flag,
    shell:
        "boneage ensemble --name {wildcards.ensemble} --member-names {params.names}"
        " --members {input.members} --train-summaries {input.summaries}"
        " --split {input.split} {params.trained} --cohort {wildcards.cohort}"
        " --out-tsv {output.predictions} --out-json {output.metrics} > {log} 2>&1"
