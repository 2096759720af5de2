# The resolved config, one file per part (the whole run, each cohort, each
# experiment): steps read it from a file, never from a shell-quoted string.
# A part's file is rewritten only when its values change (params trigger),
# so editing one experiment does not re-ingest the cohorts.


rule resolved_config:
    output:
        "results/config/{part}.json",
    log:
        "logs/config/{part}.log",
    benchmark:
        "benchmarks/config/{part}.tsv"
    wildcard_constraints:
        part=r"run|(cohorts|experiments)/[A-Za-z0-9_-]+",
    params:
        value=get_config_part,
    script:
        "../scripts/write_json.py"
