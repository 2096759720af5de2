# The resolved config, one file per part (the whole run, each cohort, each
# experiment): steps read it from a file, never from a shell-quoted string.
# A part's file is rewritten only when its values change (params trigger),
# so editing one experiment does not re-ingest the cohorts. A cohort's part
# names its source folders (a DICOM export's may name a patient): it lives in
# private/, which stays at the site; run.json leaves DICOM folders out.


rule resolved_config:
    output:
        "{home}/config/{part}.json",
    log:
        "logs/config/{home}/{part}.log",
    benchmark:
        "benchmarks/config/{home}/{part}.tsv"
    wildcard_constraints:
        home="results|private",
        part=r"run|(cohorts|experiments)/[A-Za-z0-9_-]+",
    params:
        # What reruns it: a digest of the part's values. Snakemake keeps params in
        # .snakemake/metadata, and a cohort's values may name a DICOM export.
        digest=get_config_digest,
    run:
        write_config_part(output[0], wildcards, log[0])
