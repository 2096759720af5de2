# boneage: cohort-scale pediatric bone-age estimation.
# Thin on purpose: configuration, rule files (one per stage), targets.
# All logic lives in the boneage package (see boneage/cli/, one module per rule file).
#
# `snakemake --lint` asks for a conda env or container for each rule: one finding
# per rule, and the only kind it reports (scripts/lint.sh and
# tests/workflow/test_integration_workflow.py fail on any other). There is deliberately one
# software environment for all rules: the pinned .venv that scripts/setup.sh
# builds without root, where Horovod is compiled against the installed TensorFlow
# and the site's own MPI where it has one (the MPI that `srun --mpi=pmix` starts).
# A conda env or container would bring its own MPI and need its own Horovod build.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


wildcard_constraints:
    cohort="[A-Za-z0-9_-]+",
    experiment="[A-Za-z0-9_-]+",
    shard=r"s\d{5}",
    group=r"g\d{4}",


# Tiny bookkeeping steps (seconds, no TensorFlow) run in the main Snakemake, not
# through the cluster: on Slurm each would otherwise wait for sbatch and a poll.
localrules:
    all,
    train,
    resolved_config,
    index,
    split,
    aggregate,
    ensemble,
    report,


include: "workflow/rules/snakemake_internals.smk"
include: "workflow/rules/common.smk"
include: "workflow/rules/config.smk"
include: "workflow/rules/synth.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/split.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        "results/report.html",
