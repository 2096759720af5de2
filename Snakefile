# boneage: cohort-scale pediatric bone-age estimation.
# Thin on purpose: configuration, rule files (one per stage), targets.
# All logic lives in the boneage package (see boneage/cli.py).
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/synth.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/split.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        "results/report.html",
