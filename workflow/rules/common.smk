# Helpers shared by all .smk files: config validation, path and input functions.
import json
import os

from boneage.config import validate as validate_config
from boneage.atomic import file_stamp, looks_like_wildcard
from boneage.resources import (
    Node,
    estimate_mem_mb,
    machine_memory_mb,
    plan_node,
    predict_memory_mb,
    train_memory_mb,
)
from boneage.shards import FORMATS

# The package's validator fills defaults and names each bad key (dotted path);
# it reads the schema shipped in the package (workflow/schemas/ links to it).
validate_config(config)

# Locally, this machine's memory is a resource, so concurrent jobs fit in it.
if workflow.local_exec and "mem_mb" not in workflow.global_resources:
    workflow.register_resource("mem_mb", machine_memory_mb())

# The node jobs are planned for: config `cluster`; on Slurm what it leaves out
# comes from sinfo (the smallest node of the default partition), else this
# machine. Resolved when jobs are planned, once the executor is known (it is
# not while this file is parsed); a job that Slurm runs re-reads this file in
# its own Snakemake (remote mode) and must plan for the same node.
_NODES = {}


def executor_name():
    if workflow.remote_exec and "SLURM_JOB_ID" in os.environ:
        return "slurm"
    return workflow.executor_plugin.name if workflow.executor_plugin else "local"


def node():
    """The node plan's machine (see above); a dry run asks sinfo too, where there is one."""
    name = executor_name()
    if name not in _NODES:
        slurm = name in ("slurm", "dryrun")
        _NODES[name] = Node.from_config(config["cluster"], slurm=slurm)
    return _NODES[name]


def get_executor(wildcards):
    """Snakemake's executor, for the report (a local job even on Slurm)."""
    return executor_name()


def get_node_cores(wildcards):
    """Threads of a job that uses a whole node (locally capped at --cores)."""
    return node().cores


COHORTS = list(config["cohorts"])
EXPERIMENTS = list(config["experiments"])
ENSEMBLES = config["aggregate"]["ensembles"]
# Models whose metrics the report shows: experiments and ensembles of them.
SCORED = EXPERIMENTS + list(ENSEMBLES)
SHARD_EXT = FORMATS[config["shards"]["format"]]
SHARD = f"results/cohorts/{{cohort}}/shards/{{shard}}{SHARD_EXT}"
PREDICT_ARGS = f"--batch-size {config['predict']['batch_size']}" + (
    " --tta" if config["aggregate"]["tta"] else ""
)


def cohort_spec(cohort):
    """The cohort's source paths; a synthetic cohort is rendered under results/sources/."""
    spec = dict(config["cohorts"][cohort])
    if spec["source"] == "synthetic":
        base = f"results/sources/{cohort}"
        spec.update(
            csv=f"{base}/labels.csv", truth=f"{base}/truth.csv", images=f"{base}/images"
        )
    return spec


def source_files(cohort):
    """Files (and folders) the manifest of a cohort reads."""
    spec = cohort_spec(cohort)
    keys = ("csv", "truth", "ground_truth", "table", "corrections", "folder")
    files = {k: spec[k] for k in keys if spec.get(k)}
    if spec.get("labels"):
        files["labels"] = spec["labels"]["table"]
    if spec["source"] == "synthetic":
        files["images"] = spec["images"]
    return files


def get_source_files(wildcards):
    """Inputs of a cohort's manifest: its source files, except paths Snakemake would
    read as wildcards (`/data/{site}/labels.csv`); those are tracked by `get_config_part`.
    """
    return {
        k: p
        for k, p in source_files(wildcards.cohort).items()
        if not looks_like_wildcard(p)
    }


def get_config_part(wildcards):
    """The resolved config of `results/config/{part}.json`: run, cohorts/<c> or experiments/<e>."""
    section, _, name = wildcards.part.partition("/")
    if section == "cohorts":
        # A source path with braces cannot be a Snakemake input: its size and mtime
        # go into the cohort's config file instead, so editing it still reruns ingest.
        stamps = {
            p: file_stamp(p)
            for p in source_files(name).values()
            if looks_like_wildcard(p)
        }
        return {**cohort_spec(name), **({"source_stamps": stamps} if stamps else {})}
    if section == "experiments":
        return experiment_settings(name)
    return config


_PLANS = {}


def shard_plan(cohort):
    """{shard: digest} of a cohort's shard plan, known once its manifest checkpoint has run.

    Read once per file version: a 500-shard plan is asked for by every shard job.
    """
    plan = checkpoints.manifest.get(cohort=cohort).output.plan
    key = (plan, os.stat(plan).st_mtime_ns)
    if key not in _PLANS:
        with open(plan) as fh:
            _PLANS[key] = {s["shard"]: s["digest"] for s in json.load(fh)["shards"]}
    return _PLANS[key]


def get_shard_digest(wildcards):
    """Digest of what goes into a shard: the shard reruns when, and only when, it changes."""
    return shard_plan(wildcards.cohort)[wildcards.shard]


def shard_ids(cohort):
    """Shard names of a cohort, in order."""
    return list(shard_plan(cohort))


def get_shards(wildcards):
    return expand(
        SHARD,
        cohort=wildcards.cohort,
        shard=shard_ids(wildcards.cohort),
    )


def get_shard_qc(wildcards):
    return expand(
        "results/cohorts/{cohort}/qc/{shard}.tsv",
        cohort=wildcards.cohort,
        shard=shard_ids(wildcards.cohort),
    )


def shard_groups(cohort):
    """Groups of `predict.group_size` consecutive shards (grouped predict mode)."""
    ids, size = shard_ids(cohort), config["predict"]["group_size"]
    return {f"g{i // size:04d}": ids[i : i + size] for i in range(0, len(ids), size)}


def get_group_shards(wildcards):
    shards = shard_groups(wildcards.cohort)[wildcards.group]
    return expand(SHARD, cohort=wildcards.cohort, shard=shards)


def get_shard_predictions(wildcards):
    """Prediction tables of a cohort: one per shard, or one per group of shards."""
    grouped = config["predict"]["mode"] == "grouped"
    return expand(
        "results/predictions/{experiment}/{cohort}/{part}.tsv",
        experiment=wildcards.experiment,
        cohort=wildcards.cohort,
        part=(
            [f"groups/{g}" for g in shard_groups(wildcards.cohort)]
            if grouped
            else shard_ids(wildcards.cohort)
        ),
    )


def experiment_settings(experiment):
    """The experiment's settings, with the global input size, for `boneage train`."""
    exp = dict(config["experiments"][experiment])
    exp.setdefault("image_size", config["image_size"])
    exp["train_censored"] = config["labels"]["train_censored"]
    return exp


def get_train_ranks(wildcards=None):
    """Horovod ranks of a train job: the profile's `tasks` (dgx: 8, one per GPU), else config."""
    overwrite = workflow.resource_settings.overwrite_resources or {}
    tasks = getattr(overwrite.get("train_model", {}).get("tasks"), "value", None)
    return tasks if isinstance(tasks, int) else config["distributed"]["ranks"]


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


def get_mem_mb(step):
    """Resource function: the coarse per-step figure, growing with each retry."""

    def mem_mb(wildcards, attempt):
        return attempt * estimate_mem_mb(
            step, config["image_size"], config["shards"]["size"]
        )

    return mem_mb


def _predict_plan(input):
    """The node plan for predict processes: memory measured, else estimated (see resources.py)."""
    mem, _ = predict_memory_mb(
        getattr(input, "profile", None),
        getattr(input, "calibration", None),
        config["image_size"],
        config["shards"]["size"],
        config["predict"]["batch_size"],
        config["aggregate"]["tta"],
        node().margin,
    )
    return plan_node(node().mem_mb, node().cores, mem, node().reserve_mb)


def get_predict_mem_mb(wildcards, input, attempt):
    """One predict process's memory; a retry after an out-of-memory kill asks for more."""
    return attempt * _predict_plan(input).proc_mem_mb


def get_predict_threads(wildcards, input):
    """Threads per predict process: the cores memory would leave idle (boneage plan)."""
    return _predict_plan(input).threads


def get_group_tasks(wildcards, input):
    """MPI ranks of a grouped predict job: the processes that fit one node."""
    return _predict_plan(input).processes


def get_group_mpi(wildcards, input):
    """The launcher of a grouped predict job's ranks; none for a one-process plan, which
    the Slurm plugin would refuse as an MPI job of one task."""
    return config["cluster"]["mpi"] if _predict_plan(input).processes > 1 else ""


def get_train_mpi(wildcards):
    """The launcher of a train job's ranks on Slurm; none for a single rank."""
    return config["cluster"]["mpi"] if get_train_ranks() > 1 else ""


def get_group_threads(wildcards, input):
    plan = _predict_plan(input)
    return plan.processes * plan.threads


def get_group_mem_mb(wildcards, input, attempt):
    plan = _predict_plan(input)
    return attempt * plan.processes * plan.proc_mem_mb


def get_train_mem_mb(wildcards, input, attempt):
    """Memory of a train job: its ranks x the model-based estimate (profile.json)."""
    exp = experiment_settings(wildcards.experiment)
    examples = 0
    for index in input.index:
        if os.path.exists(index):
            with open(index) as fh:
                examples += sum(s["images"] for s in json.load(fh)["shards"])
    ranks = get_train_ranks()
    mem = train_memory_mb(
        input.profile, exp, ranks, examples, config["image_size"], node().margin
    )
    return attempt * mem


def get_train_cpus_per_task(wildcards):
    """Cores per rank of a train job on Slurm (each MPI task gets its share of the node)."""
    return max(1, node().cores // get_train_ranks())


def get_calibration_shard(wildcards):
    """The shard predict is calibrated on: the first of the first training cohort."""
    cohort = config["train_cohorts"][0] if config["train_cohorts"] else COHORTS[0]
    return SHARD.format(cohort=cohort, shard=shard_ids(cohort)[0])


def get_predict_inputs(wildcards):
    """What sizes a predict job: the model's profile and, when calibrating, its measurement."""
    inputs = {"profile": f"results/models/{wildcards.experiment}/profile.json"}
    if config["predict"]["calibrate"]:
        inputs["calibration"] = (
            f"results/models/{wildcards.experiment}/calibration.json"
        )
    return inputs


def get_run_info(wildcards):
    """The coarse memory figure of each step (the report adds where it ran and the node).

    A param, so nothing here may differ between a dry run and the real run.
    """
    steps = ("shard", "train", "predict")
    return json.dumps(
        {
            "mem_mb": {
                s: estimate_mem_mb(s, config["image_size"], config["shards"]["size"])
                for s in steps
            },
        }
    )


def get_synth_args(wildcards):
    """Command-line arguments of `boneage synth` for a synthetic cohort."""
    c = config["cohorts"][wildcards.cohort]
    return (
        f"--n {c['n']} --seed {c['seed']} --nonhand-share {c['nonhand_share']}"
        f" --inverted-share {c['inverted_share']}"
    )
