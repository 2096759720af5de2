# Ingest: table checks and shard list (checkpoint), one job per shard, cohort index.


checkpoint manifest:
    input:
        unpack(get_source_files),
        spec="private/config/cohorts/{cohort}.json",
    output:
        rows="private/cohorts/{cohort}/rows.tsv",
        shard_list="results/cohorts/{cohort}/shards.json",
    log:
        "logs/manifest/{cohort}.log",
    benchmark:
        "benchmarks/manifest/{cohort}.tsv"
    params:
        shard_size=config["shards"]["size"],
    shell:
        "boneage manifest --spec {input.spec} --shard-size {params.shard_size}"
        " --rows {output.rows} --shard-list {output.shard_list} > {log} 2>&1"


# A shard reruns only when its own digest changes (params), not whenever the
# manifest is rewritten (its inputs are ancient): adding a correction re-shards
# only the shard holding that row.
rule shard:
    input:
        rows=ancient("private/cohorts/{cohort}/rows.tsv"),
        shard_list=ancient("results/cohorts/{cohort}/shards.json"),
    output:
        # Zarr shards are folders, HDF5 shards files.
        shard=directory(SHARD) if SHARD.endswith(".zarr") else SHARD,
        qc="results/cohorts/{cohort}/qc/{shard}.tsv",
    log:
        "logs/shard/{cohort}/{shard}.log",
    benchmark:
        "benchmarks/shard/{cohort}/{shard}.tsv"
    resources:
        mem_mb=get_mem_mb("shard"),
    params:
        size=config["image_size"],
        digest=get_shard_digest,
    shell:
        "boneage shard --rows {input.rows} --shard-list {input.shard_list} --shard {wildcards.shard}"
        " --size {params.size} --out {output.shard} --qc {output.qc} > {log} 2>&1"


rule index:
    input:
        rows="private/cohorts/{cohort}/rows.tsv",
        qc=get_shard_qc,
        shards=get_shards,
    output:
        manifest=report(
            "results/cohorts/{cohort}/manifest.tsv",
            caption="../report/manifest.rst",
            category="Ingest",
        ),
        index="results/cohorts/{cohort}/index.json",
    log:
        "logs/index/{cohort}.log",
    benchmark:
        "benchmarks/index/{cohort}.tsv"
    shell:
        "boneage index --rows {input.rows} --qc {input.qc} --shards {input.shards}"
        " --manifest {output.manifest} --index {output.index} > {log} 2>&1"
