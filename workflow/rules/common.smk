# Shared by all .smk files: config validation, and the input, params and resource
# functions the rules call. Each is a thin wrapper around boneage.plan.RunPlan.
import inspect
import os
from pathlib import Path

from boneage.atomic import write_json
from boneage.config import validate as validate_config
from boneage.plan import RunPlan
from boneage.provenance import sha256_json
from boneage.report.collect import report_files
from boneage.memory.node import Node, machine_memory_mb

# The package's validator fills defaults and names each bad key (dotted path);
# it reads the schema shipped in the package (workflow/schemas/ links to it).
validate_config(config)


# Locally, this machine's memory is a resource, so concurrent jobs fit in it.
if workflow.local_exec and "mem_mb" not in workflow.global_resources:
    workflow.register_resource("mem_mb", machine_memory_mb())


def executor_name():
    """The executor jobs run under: slurm (also inside a Slurm job), local, dryrun, ..."""
    if workflow.remote_exec and "SLURM_JOB_ID" in os.environ:
        return "slurm"
    return workflow.executor_plugin.name if workflow.executor_plugin else "local"


# -----------------------------------------------------------------------------------------
# The node jobs are planned for: config `cluster`; on Slurm what it leaves out comes
# from sinfo (the smallest node of the default partition), else this machine; a dry
# run plans for Slurm where sinfo answers. Resolved when jobs are planned (the executor
# is unknown while this file is parsed); a job that Slurm runs re-reads this file in
# its own Snakemake and must plan for the same node.
_NODES = {}


def node():
    name = executor_name()
    if name not in _NODES:
        slurm = True if name == "slurm" else None if name == "dryrun" else False
        _NODES[name] = Node.from_config(config["cluster"], slurm=slurm)
    return _NODES[name]


PLAN = RunPlan(config, node)
COHORTS = PLAN.cohorts
EXPERIMENTS = PLAN.experiments
ENSEMBLES = PLAN.ensembles
SCORED = EXPERIMENTS + list(ENSEMBLES)  # models whose metrics the report shows
SHARD = PLAN.shard_path
PREDICT_ARGS = PLAN.predict_args()
PREDICT_SIZING = PLAN.predict_inputs()  # the file predict jobs are sized by
REPORT_INPUTS = report_files(config)  # every file the report reads


def get_executor(wildcards):
    return executor_name()


def get_node_cores(wildcards):
    """Threads of a job that uses a whole node (locally capped at --cores)."""
    return node().cores


def get_source_files(wildcards):
    return PLAN.source_inputs(wildcards.cohort)


def get_weights_file(wildcards):
    return PLAN.weights_input(wildcards.experiment)


def get_config_digest(wildcards):
    return sha256_json(PLAN.config_part(wildcards.part, wildcards.home))


def write_config_part(path, wildcards, log):
    """The resolved config part as JSON: steps read it from a file, never a shell string."""
    write_json(path, PLAN.config_part(wildcards.part, wildcards.home))
    Path(log).write_text(f"wrote {path}\n")


def get_synth_args(wildcards):
    return PLAN.synth_args(wildcards.cohort)


def shard_ids(cohort):
    """Shard names of a cohort, known once its manifest checkpoint has run."""
    return list(PLAN.shard_digests(shard_list(cohort)))


_MANIFESTS_DONE = {}


def shard_list(cohort):
    """shards.json of a cohort once its manifest checkpoint is done.

    Until then Snakemake's IncompleteCheckpointException. Once done it stays done
    for the run, so the answer is kept: 10,000 shard jobs ask (its content is read
    again whenever the file changes, see RunPlan.shard_digests).
    """
    if cohort not in _MANIFESTS_DONE:
        _MANIFESTS_DONE[cohort] = checkpoints.manifest.get(
            cohort=cohort
        ).output.shard_list
    return _MANIFESTS_DONE[cohort]


def get_shard_digest(wildcards):
    """Digest of what goes into a shard: the shard reruns when, and only when, it changes."""
    return PLAN.shard_digests(shard_list(wildcards.cohort))[wildcards.shard]


def get_shards(wildcards):
    return expand(SHARD, cohort=wildcards.cohort, shard=shard_ids(wildcards.cohort))


def get_shard_qc(wildcards):
    return expand(
        "results/cohorts/{cohort}/qc/{shard}.tsv",
        cohort=wildcards.cohort,
        shard=shard_ids(wildcards.cohort),
    )


def get_group_shards(wildcards):
    shards = PLAN.shard_groups(shard_ids(wildcards.cohort))[wildcards.group]
    return expand(SHARD, cohort=wildcards.cohort, shard=shards)


def get_shard_predictions(wildcards):
    """Prediction tables of a cohort: one per shard, or one per group of shards."""
    return expand(
        "results/predictions/{experiment}/{cohort}/{part}.tsv",
        experiment=wildcards.experiment,
        cohort=wildcards.cohort,
        part=PLAN.prediction_parts(shard_ids(wildcards.cohort)),
    )


def get_calibration_shard(wildcards):
    cohort = PLAN.calibration_cohort()
    return SHARD.format(cohort=cohort, shard=shard_ids(cohort)[0])


def get_ensemble_members(wildcards):
    members = ENSEMBLES[wildcards.ensemble]
    return {
        "members": expand(
            "results/predictions/{member}/{cohort}.tsv",
            member=members,
            cohort=wildcards.cohort,
        ),
        "summaries": expand("results/models/{member}/train.json", member=members),
    }


def get_ensemble_names(wildcards):
    return " ".join(ENSEMBLES[wildcards.ensemble])


def get_trained_flag(wildcards):
    return "--trained-on-cohort" if wildcards.cohort in config["train_cohorts"] else ""


def get_run_info(wildcards):
    return PLAN.run_info()


# --- resources: memory grows with each retry (attempt) ----------------------------------
def get_gpus(step):
    """GPUs a job of ``step`` takes (0 without GPUs): bounds local jobs (the dgx profile's
    `resources: gpus=8`); each job then takes free ones with a lock (boneage.gpus)."""
    return lambda wildcards: PLAN.step_gpus(step)


def get_gres(step):
    """The Slurm job's GPUs per node ("gpu:N"; empty without GPUs). With tasks_per_gpu=0
    the plugin adds no --ntasks-per-gpu, which an srun inside the job refuses."""
    return lambda wildcards: (
        f"gpu:{PLAN.step_gpus(step)}" if PLAN.step_gpus(step) else ""
    )


def get_mem_mb(step):
    """Resource function: the coarse per-step figure."""
    return known_signature(lambda wildcards, attempt: attempt * PLAN.step_mem_mb(step))


def get_cohort_mem_mb(wildcards, attempt):
    """aggregate, ensemble: one cohort's per-image tables."""
    return attempt * PLAN.table_mem_mb([wildcards.cohort])


def get_report_mem_mb(wildcards, attempt):
    """The report: manifests and predictions of every cohort and scored model."""
    return attempt * PLAN.table_mem_mb(COHORTS, tables=len(SCORED) + 1)


def get_train_ranks(wildcards):
    return PLAN.train_ranks()


def get_train_mpi(wildcards):
    return PLAN.launcher(PLAN.train_ranks())


def get_train_nodes(wildcards):
    return PLAN.train_nodes()


def get_train_cpus_per_task(wildcards):
    return PLAN.train_cpus_per_task()


def get_train_mem_mb(wildcards, input, attempt):
    return attempt * PLAN.train_mem_mb(
        wildcards.experiment, input.footprint, input.index
    )


def _predict_plan(wildcards, input):
    """calibrate is sized by the footprint; predict jobs by the calibration once measured."""
    return PLAN.predict_plan(
        wildcards.experiment, measured="calibration" in input.keys()
    )


def get_predict_mem_mb(wildcards, input, attempt):
    return attempt * _predict_plan(wildcards, input).proc_mem_mb


def get_predict_threads(wildcards, input):
    """Threads per predict process: the cores memory would leave idle (boneage plan)."""
    return _predict_plan(wildcards, input).threads


def get_group_tasks(wildcards, input):
    """MPI ranks of a grouped predict job: the processes that fit one node."""
    return _predict_plan(wildcards, input).processes


def get_group_mpi(wildcards, input):
    return PLAN.launcher(_predict_plan(wildcards, input).processes)


def get_group_threads(wildcards, input):
    plan = _predict_plan(wildcards, input)
    return plan.processes * plan.threads


def get_group_mem_mb(wildcards, input, attempt):
    plan = _predict_plan(wildcards, input)
    return attempt * plan.processes * plan.proc_mem_mb


for _name, _func in list(globals().items()):
    if _name.startswith("get_") and inspect.isfunction(_func):
        known_signature(_func)
