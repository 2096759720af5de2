# Helpers shared by all .smk files: config validation, path and input functions.
import json

from boneage.config import validate as validate_config
from boneage.resources import estimate_mem_mb, machine_memory_mb
from boneage.shards import FORMATS

# The package's validator fills defaults and names each bad key (dotted path);
# it reads the same workflow/schemas/config.schema.yaml as snakemake's validate().
validate_config(config)

# Locally, this machine's memory is a resource, so concurrent jobs fit in it.
if workflow.local_exec and "mem_mb" not in workflow.global_resources:
    workflow.register_resource("mem_mb", machine_memory_mb())

COHORTS = list(config["cohorts"])
EXPERIMENTS = list(config["experiments"])
ENSEMBLES = config["aggregate"]["ensembles"]
# Models whose metrics the report shows: experiments and ensembles of them.
SCORED = EXPERIMENTS + list(ENSEMBLES)
SHARD_EXT = FORMATS[config["shards"]["format"]]
SHARD = f"results/cohorts/{{cohort}}/shards/{{shard}}{SHARD_EXT}"


def cohort_spec(cohort):
    """The cohort's source paths; a synthetic cohort is rendered under results/sources/."""
    spec = dict(config["cohorts"][cohort])
    if spec["source"] == "synthetic":
        base = f"results/sources/{cohort}"
        spec.update(csv=f"{base}/labels.csv", truth=f"{base}/truth.csv", images=f"{base}/images")
    return spec


def get_source_files(wildcards):
    """Files (and folders) the manifest of a cohort depends on."""
    spec = cohort_spec(wildcards.cohort)
    keys = ("csv", "truth", "ground_truth", "table", "corrections", "folder")
    files = {k: spec[k] for k in keys if spec.get(k)}
    if spec.get("labels"):
        files["labels"] = spec["labels"]["table"]
    if spec["source"] == "synthetic":
        files["images"] = spec["images"]
    return files


def get_cohort_json(wildcards):
    """The cohort's config entry (source paths resolved) for `boneage manifest --spec`."""
    return json.dumps(cohort_spec(wildcards.cohort), sort_keys=True)


def get_shard_digest(wildcards):
    """Digest of what goes into a shard: the shard reruns when, and only when, it changes."""
    plan = checkpoints.manifest.get(cohort=wildcards.cohort).output.plan
    with open(plan) as fh:
        return {s["shard"]: s["digest"] for s in json.load(fh)["shards"]}[wildcards.shard]


def shard_ids(cohort):
    """Shard names of a cohort, known once its manifest checkpoint has run."""
    plan = checkpoints.manifest.get(cohort=cohort).output.plan
    with open(plan) as fh:
        return [s["shard"] for s in json.load(fh)["shards"]]


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


def get_shard_predictions(wildcards):
    return expand(
        "results/predictions/{experiment}/{cohort}/{shard}.tsv",
        experiment=wildcards.experiment,
        cohort=wildcards.cohort,
        shard=shard_ids(wildcards.cohort),
    )


def get_experiment_json(wildcards):
    """The experiment's settings, with the global input size, for `boneage train`."""
    exp = dict(config["experiments"][wildcards.experiment])
    exp.setdefault("image_size", config["image_size"])
    exp["train_censored"] = config["labels"]["train_censored"]
    return json.dumps(exp, sort_keys=True)


def get_train_ranks(wildcards):
    """Horovod ranks of a train job unless the profile sets `tasks` (dgx: 8, one per GPU)."""
    return config["distributed"]["ranks"]


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
    """Resource function: the planner's memory estimate, growing with each retry."""

    def mem_mb(wildcards, attempt):
        return attempt * estimate_mem_mb(
            step, config["image_size"], config["shards"]["size"]
        )

    return mem_mb


def get_run_info():
    """Where and how this run was planned, and the memory each step asked for (report)."""
    steps = ("shard", "train", "predict")
    return json.dumps(
        {
            "executor": workflow.executor_plugin.name if workflow.executor_plugin else "local",
            "cores": workflow.cores,
            "nodes": workflow.nodes,
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
