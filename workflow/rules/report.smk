# The self-contained HTML report.


rule report:
    input:
        metrics=expand(
            "results/metrics/{experiment}/{cohort}.json",
            experiment=SCORED,
            cohort=COHORTS,
        ),
        manifests=expand("results/cohorts/{cohort}/manifest.tsv", cohort=COHORTS),
    output:
        report(
            "results/report.html",
            caption="../report/report.rst",
            category="Report",
        ),
    params:
        config=json.dumps(config, sort_keys=True),
    log:
        "logs/report/report.log",
    benchmark:
        "benchmarks/report/report.tsv"
    shell:
        "boneage report --results results --benchmarks benchmarks"
        " --config {params.config:q} --out {output} > {log} 2>&1"
