# Saliency maps of example predictions, and the self-contained HTML report.


rule saliency:
    input:
        model="results/models/{experiment}/model.keras",
        predictions="results/predictions/{experiment}/{cohort}.tsv",
        index="results/cohorts/{cohort}/index.json",
    output:
        "results/saliency/{experiment}/{cohort}.npz",
    log:
        "logs/saliency/{experiment}/{cohort}.log",
    benchmark:
        "benchmarks/saliency/{experiment}/{cohort}.tsv"
    wildcard_constraints:
        experiment="|".join(EXPERIMENTS),
    resources:
        gpus=get_gpus("saliency"),
        gres=get_gres("saliency"),
        tasks_per_gpu=0,
        mem_mb=get_mem_mb("predict"),
    shell:
        "boneage saliency --model {input.model} --predictions {input.predictions}"
        " --index {input.index} --out {output} > {log} 2>&1"


rule report:
    # Every file the report reads (boneage.report.collect.report_files): nothing
    # it shows comes from a file this config does not make.
    input:
        unpack(lambda wildcards: REPORT_INPUTS),
        config="results/config/run.json",
    output:
        report(
            "results/report.html",
            caption="../report/report.rst",
            category="Report",
        ),
    log:
        "logs/report/report.log",
    benchmark:
        "benchmarks/report/report.tsv"
    # Where the workflow ran: a resource, evaluated when the job is planned (a param
    # would differ between a dry run and the run, and rerun the report).
    resources:
        executor=get_executor,
        mem_mb=get_report_mem_mb,
    params:
        run=get_run_info,
    shell:
        "boneage report --results results --benchmarks benchmarks"
        " --config {input.config} --run-info {params.run:q} --executor {resources.executor}"
        " --out {output} > {log} 2>&1"
