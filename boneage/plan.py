"""What the rules ask of the validated config: paths, shard lists and per-job resources.

``workflow/rules/common.smk`` builds one :class:`RunPlan` from the config and
wraps its methods as Snakemake input, params and resource functions, so the
rules stay thin and this logic is typed and unit-tested like the rest of the
package. Nothing here imports Snakemake.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from typing import Any

from boneage.atomic import looks_like_wildcard
from boneage.config import public_config
from boneage.experiment import Experiment
from boneage.memory.node import (
    Node,
    NodePlan,
    coarse_mem_mb,
    plan_node,
    predict_memory_mb,
    table_mem_mb,
    train_memory_mb,
)
from boneage.salt import fingerprint, read_salt
from boneage.shards import FORMATS
from boneage.stamps import file_stamp, folder_stamp
from boneage.weights import weights_file

#: Keys of a cohort entry that name files or folders its manifest reads.
SOURCE_KEYS = ("csv", "truth", "ground_truth", "table", "corrections", "folder")
#: What sizes predict jobs: the model's footprint, and the calibration job's measurement.
FOOTPRINT = "results/models/{experiment}/footprint.json"
CALIBRATION = "results/models/{experiment}/calibration.json"


#: Steps that run a model: each takes a GPU where the nodes have them (training: one per rank).
MODEL_STEPS = ("train", "footprint", "calibrate", "predict", "saliency")


class RunPlan:
    """The run described by a validated config; ``node`` gives the machine jobs are planned for.

    ``node`` is called lazily (the executor, and so the node, is known only
    once Snakemake plans jobs, not while the Snakefile is parsed).
    """

    def __init__(self, config: dict[str, Any], node: Callable[[], Node]) -> None:
        self.config = config
        self._node = node
        self.cohorts = list(config["cohorts"])
        self.experiments = list(config["experiments"])
        self.ensembles: dict[str, list[str]] = config["aggregate"]["ensembles"]
        self.shard_path = (
            f"results/cohorts/{{cohort}}/shards/{{shard}}{FORMATS[config['shards']['format']]}"
        )
        self._shard_digests: dict[tuple[str, int], dict[str, str]] = {}
        self._shard_rows: dict[str, int] = {}
        self._predict_plans: dict[tuple, NodePlan] = {}
        self._folder_stamps: dict[str, str] = {}  # one walk per folder per Snakemake process

    # -- cohorts and sources --------------------------------------------------------------

    def cohort_spec(self, cohort: str) -> dict[str, Any]:
        """The cohort's entry; a synthetic cohort's files are rendered under results/sources/."""
        spec = dict(self.config["cohorts"][cohort])
        if spec["source"] == "synthetic":
            base = f"results/sources/{cohort}"
            spec.update(
                csv=f"{base}/labels.csv", truth=f"{base}/truth.csv", images=f"{base}/images"
            )
        return spec

    def source_files(self, cohort: str) -> dict[str, str]:
        """Files (and folders) the manifest of a cohort reads."""
        spec = self.cohort_spec(cohort)
        files = {k: spec[k] for k in SOURCE_KEYS if spec.get(k)}
        if spec.get("labels"):
            files["labels"] = spec["labels"]["table"]
        if spec["source"] == "synthetic":
            files["images"] = spec["images"]
        return files

    def image_folders(self, cohort: str) -> list[str]:
        """The folders a cohort's films are read from, where no rule of ours writes them.

        A film rewritten in place leaves its folder's mtime as it was, so
        Snakemake cannot see it: the folders' stamps go into the cohort's
        resolved config, and a changed film reruns the manifest (and then
        only the shard that holds it).
        """
        spec = self.config["cohorts"][cohort]
        if spec["source"] == "synthetic":
            return []
        return [spec[k] for k in ("images", "folder") if spec.get(k)]

    def source_inputs(self, cohort: str) -> dict[str, str]:
        """Source files Snakemake tracks: not paths it would read as wildcards, and not the
        image folders (their stamps in the cohort's private part track them, and Snakemake's
        log, which names every input, must not name a DICOM export's folder)."""
        folders = set(self.image_folders(cohort))
        return {
            k: p
            for k, p in self.source_files(cohort).items()
            if not looks_like_wildcard(p) and p not in folders
        }

    def config_part(self, part: str, home: str = "results") -> dict[str, Any]:
        """The resolved config of ``{home}/config/{part}.json`` (run, cohorts/c, experiments/e).

        A cohort's part is private (``home`` private): it names the source's
        folders. A source path with braces cannot be a Snakemake input: its
        size and mtime go into the cohort's part instead, so editing it still
        reruns ingest; so do the image folders' stamps and the salt's fingerprint.
        """
        section, _, name = part.partition("/")
        if (home == "private") != (section == "cohorts"):
            raise ValueError(f"{home}/config/{part}.json: cohorts' parts are private, no other")
        if section == "cohorts":
            stamps = {
                p: file_stamp(p) for p in self.source_files(name).values() if looks_like_wildcard(p)
            }
            spec = self.cohort_spec(name)
            for p in self.image_folders(name):
                if p not in self._folder_stamps:
                    self._folder_stamps[p] = folder_stamp(p)
            folders = {p: self._folder_stamps[p] for p in self.image_folders(name)}
            salt = fingerprint(read_salt(spec, name)) if spec["source"] == "dicom" else ""
            return {
                **spec,
                **({"source_stamps": stamps} if stamps else {}),
                **({"image_stamps": folders} if folders else {}),
                **({"salt_fingerprint": salt} if salt else {}),
            }
        if section == "experiments":
            return self.experiment_settings(name)
        return public_config(self.config)

    def synth_args(self, cohort: str) -> str:
        """Command-line arguments of ``boneage synth`` for a synthetic cohort."""
        c = self.config["cohorts"][cohort]
        return (
            f"--n {c['n']} --seed {c['seed']} --nonhand-share {c['nonhand_share']}"
            f" --inverted-share {c['inverted_share']} --hard-share {c['hard_share']}"
        )

    # -- shards ---------------------------------------------------------------------------

    def shard_digests(self, path: str) -> dict[str, str]:
        """{shard: digest} of a manifest's shard list, read once per file version."""
        key = (path, os.stat(path).st_mtime_ns)
        if key not in self._shard_digests:
            with open(path) as fh:
                shards = json.load(fh)["shards"]
            self._shard_digests[key] = {s["shard"]: s["digest"] for s in shards}
            self._shard_rows[path] = sum(len(s["rows"]) for s in shards)
        return self._shard_digests[key]

    def cohort_images(self, cohort: str) -> int:
        """Images in a cohort's shard list; 0 before its manifest step has run."""
        path = f"results/cohorts/{cohort}/shards.json"
        if not os.path.exists(path):
            return 0
        self.shard_digests(path)
        return self._shard_rows[path]

    def shard_groups(self, shard_ids: Sequence[str]) -> dict[str, list[str]]:
        """Groups of ``predict.group_size`` consecutive shards (grouped predict mode)."""
        size = self.config["predict"]["group_size"]
        return {
            f"g{i // size:04d}": list(shard_ids[i : i + size])
            for i in range(0, len(shard_ids), size)
        }

    def prediction_parts(self, shard_ids: Sequence[str]) -> list[str]:
        """The prediction tables of a cohort: one per shard, or groups/<g> per group."""
        if self.config["predict"]["mode"] == "grouped":
            return [f"groups/{g}" for g in self.shard_groups(shard_ids)]
        return list(shard_ids)

    def calibration_cohort(self) -> str:
        """The cohort whose first shard predict is calibrated on."""
        return (self.config["train_cohorts"] or self.cohorts)[0]

    # -- experiments ----------------------------------------------------------------------

    def experiment_settings(self, experiment: str) -> dict[str, Any]:
        """The experiment's settings, with the global input size, for ``boneage train``."""
        exp = dict(self.config["experiments"][experiment])
        exp.setdefault("image_size", self.config["image_size"])
        exp["train_censored"] = self.config["labels"]["train_censored"]
        return exp

    def experiment(self, experiment: str) -> Experiment:
        """The experiment as training takes it (:meth:`experiment_settings`, typed)."""
        return Experiment.from_dict(experiment, self.experiment_settings(experiment))

    def weights_input(self, experiment: str) -> list[str]:
        """The experiment's starting-weights file, a declared input (a new file retrains)."""
        exp = self.experiment(experiment)
        path = weights_file(exp.weights, exp.backbone)
        return [path] if path else []

    def step_gpus(self, step: str) -> int:
        """GPUs a job of ``step`` takes where the nodes have them: one per training rank
        (per node), one for any other model step, none for the rest (and none without GPUs)."""
        if not self._node().gpus or step not in MODEL_STEPS:
            return 0
        return self.train_ranks() // self.config["distributed"]["nodes"] if step == "train" else 1

    def train_ranks(self) -> int:
        """Horovod ranks of a train job (``distributed.ranks``; the dgx profile sets 8)."""
        return self.config["distributed"]["ranks"]

    def launcher(self, ranks: int) -> str:
        """How a Slurm job starts ``ranks`` ranks; none for one (the plugin refuses 1-task MPI)."""
        return self.config["cluster"]["mpi"] if ranks > 1 else ""

    def train_nodes(self) -> int:
        """Nodes a train job spans (``distributed.nodes``, at most one per rank)."""
        return min(self.config["distributed"]["nodes"], self.train_ranks())

    def train_ranks_per_node(self) -> int:
        """Ranks on the busiest node of a train job."""
        return -(-self.train_ranks() // self.train_nodes())

    def train_cpus_per_task(self) -> int:
        """Cores per rank of a train job (each rank gets its share of its node)."""
        return max(1, self._node().cores // self.train_ranks_per_node())

    def train_mem_mb(self, experiment: str, footprint: str, index_paths: Sequence[str]) -> int:
        """Memory per node of a train job: its ranks there x the estimate (footprint.json)."""
        examples = 0
        for index in index_paths:
            if os.path.exists(index):
                with open(index) as fh:
                    examples += sum(s["images"] for s in json.load(fh)["shards"])
        return train_memory_mb(
            footprint,
            self.experiment(experiment),
            self.train_ranks_per_node(),
            examples,
            self.config["image_size"],
            self._node().margin,
            world=self.train_ranks(),
        )

    # -- predict --------------------------------------------------------------------------

    def predict_args(self) -> str:
        """Options every predict command takes: batch size and test-time augmentation."""
        tta = " --tta" if self.config["aggregate"]["tta"] else ""
        return f"--batch-size {self.config['predict']['batch_size']}{tta}"

    def predict_inputs(self) -> dict[str, str]:
        """The one file a predict job is sized by: its calibration, else the model's footprint.

        A pattern in ``{experiment}``, not a function: a 10,000-shard run calls no
        input function for it. One file, since each input costs Snakemake time per
        job; the calibration is made from the footprint and the model, so a predict
        job still follows (and reruns after) both.
        """
        if self.config["predict"]["calibrate"]:
            return {"calibration": CALIBRATION}
        return {"footprint": FOOTPRINT}

    def predict_plan(self, experiment: str, measured: bool = True) -> NodePlan:
        """The node plan for predict processes: memory measured, else estimated.

        ``measured``: use the experiment's calibration when there is one (False
        for the calibration job itself, sized by the footprint). Cached per file
        version: every predict job of a 10,000-shard cohort asks.
        """
        footprint = FOOTPRINT.format(experiment=experiment)
        calibration = CALIBRATION.format(experiment=experiment) if measured else None
        stamp = tuple(
            os.stat(p).st_mtime_ns if p and os.path.exists(p) else None
            for p in (footprint, calibration)
        )
        key = (footprint, calibration, stamp)
        if key not in self._predict_plans:
            node, cfg = self._node(), self.config
            mem, _ = predict_memory_mb(
                footprint,
                calibration,
                cfg["image_size"],
                cfg["shards"]["size"],
                cfg["predict"]["batch_size"],
                cfg["aggregate"]["tta"],
                node.margin,
                node.gpus,
            )
            self._predict_plans[key] = plan_node(
                node.mem_mb, node.cores, mem, node.reserve_mb, node.gpus
            )
        return self._predict_plans[key]

    # -- coarse figures -------------------------------------------------------------------

    def table_mem_mb(self, cohorts: Sequence[str], tables: int = 1) -> int:
        """Memory of a step holding ``tables`` per-image tables of ``cohorts``.

        aggregate and ensemble: one cohort's predictions; the report: every
        cohort's manifest and one prediction table per scored model.
        """
        return table_mem_mb(tables * sum(self.cohort_images(c) for c in cohorts))

    def step_mem_mb(self, step: str) -> int:
        """The coarse memory figure of a step (before any footprint or measurement exists)."""
        return coarse_mem_mb(step, self.config["image_size"], self.config["shards"]["size"])

    def run_info(self) -> str:
        """JSON for the report: the coarse memory figure of each step (same in a dry run)."""
        return json.dumps(
            {"mem_mb": {s: self.step_mem_mb(s) for s in ("shard", "train", "predict")}}
        )
