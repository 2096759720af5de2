# Render a built-in synthetic cohort (RSNA training layout).


rule synth:
    output:
        csv="results/sources/{cohort}/labels.csv",
        truth="results/sources/{cohort}/truth.csv",
        images=directory("results/sources/{cohort}/images"),
    log:
        "logs/synth/{cohort}.log",
    benchmark:
        "benchmarks/synth/{cohort}.tsv"
    # Rendering is CPU-bound and runs in worker processes: a node's cores
    # (locally capped at --cores).
    threads: get_node_cores
    params:
        args=get_synth_args,
    shell:
        "boneage synth --out results/sources/{wildcards.cohort} {params.args}"
        " --workers {threads} > {log} 2>&1"
