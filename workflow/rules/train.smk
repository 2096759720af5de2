# Train one model per experiment on the training cohorts; `snakemake train` builds all.


rule model_footprint:
    input:
        experiment="results/config/experiments/{experiment}.json",
        weights=get_weights_file,  # none for random weights
    output:
        "results/models/{experiment}/footprint.json",
    log:
        "logs/footprint/{experiment}.log",
    benchmark:
        "benchmarks/footprint/{experiment}.tsv"
    resources:
        gpus=get_gpus("footprint"),
        gres=get_gres("footprint"),
        tasks_per_gpu=0,
        mem_mb=get_mem_mb("train"),  # it measures a few train steps
    shell:
        "boneage footprint --experiment {input.experiment} --out {output} > {log} 2>&1"


rule train_model:
    input:
        experiment="results/config/experiments/{experiment}.json",
        weights=get_weights_file,  # none for random weights
        footprint="results/models/{experiment}/footprint.json",
        index=expand(
            "results/cohorts/{cohort}/index.json", cohort=config["train_cohorts"]
        ),
        split=expand(
            "results/cohorts/{cohort}/split.tsv", cohort=config["train_cohorts"]
        ),
    output:
        model="results/models/{experiment}/model.keras",
        history=report(
            "results/models/{experiment}/history.tsv",
            caption="../report/history.rst",
            category="Training",
        ),
        summary="results/models/{experiment}/train.json",
    log:
        "logs/train/{experiment}.log",
    benchmark:
        "benchmarks/train/{experiment}.tsv"
    # The job's ranks share the node's cores (intra-op threads split per rank);
    # on Slurm it is one MPI job: `tasks` ranks over `nodes` nodes, `cpus_per_task`
    # cores each; mem_mb is per node.
    threads: get_node_cores
    resources:
        gpus=get_gpus("train"),
        gres=get_gres("train"),
        tasks_per_gpu=0,
        mem_mb=get_train_mem_mb,
        tasks=get_train_ranks,
        nodes=get_train_nodes,
        cpus_per_task=get_train_cpus_per_task,
        mpi=get_train_mpi,
    params:
        cpu_ranks=config["distributed"]["cpu_ranks"],
        controller=config["distributed"]["controller"],
    shell:
        "boneage launch --ranks {resources.tasks} --nodes {resources.nodes}"
        " --cpus-per-task {resources.cpus_per_task}"
        " --cpu-ranks {params.cpu_ranks}"
        " --launcher={resources.mpi:q}"
        " --controller {params.controller} --"
        " boneage train --name {wildcards.experiment} --experiment {input.experiment}"
        " --index {input.index} --split {input.split}"
        " --out-dir results/models/{wildcards.experiment} --threads {threads} > {log} 2>&1"


rule train:
    input:
        expand("results/models/{experiment}/model.keras", experiment=EXPERIMENTS),
