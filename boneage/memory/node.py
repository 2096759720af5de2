"""Resources that rules take instead of hard-coded numbers, and node plans.

Memory comes, best first, from a measurement (``boneage calibrate``: predict
on one shard, peak RSS), the model-based estimate (boneage.memory.model, from the
experiment's ``footprint.json``), or the coarse per-step figures below when
neither file exists yet (a dry run before training). :func:`plan_node` then
decides how many such processes share a node and how many threads each gets;
the rules' ``mem_mb`` and ``threads`` (``cpus_per_task`` on Slurm) come
from that plan, so SLURM packs the planned number of jobs per node and a
local run caps its concurrency the same way through Snakemake resources.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from boneage.config import section_defaults
from boneage.experiment import Experiment
from boneage.launch import gpu_count
from boneage.memory.model import ModelFootprint, peak_memory, predict_host_batch

TF_RUNTIME_MB = 700
#: Memory kept free on a node for the OS and the scheduler's daemons (MB).
NODE_RESERVE_MB = 2048
#: Headroom over a measured or estimated peak: the schema's ``cluster.memory_margin``.
MARGIN: float = section_defaults("cluster")["memory_margin"]
PYTHON_MB = 250
#: The Snakemake process that runs each job beside the step's own process (on
#: Slurm, the jobstep executor inside the allocation counts against its memory).
JOB_OVERHEAD_MB = 300


def coarse_mem_mb(step: str, image_size: int, shard_size: int, batch_size: int = 32) -> int:
    """Coarse peak memory (MB) of one ``step`` job, for when no footprint or measurement exists."""
    pixels_mb = image_size * image_size / 2**20
    if step == "shard":
        # One decoded full-size film (up to ~40 MPixel float32) plus the shard's images.
        mem = PYTHON_MB + 4 * 40 + 2 * shard_size * pixels_mb + 100
    elif step == "predict":
        mem = TF_RUNTIME_MB + 4 * shard_size * pixels_mb + 64 * 200 * pixels_mb + 300
    elif step == "train":
        # Activations of a small CNN: ~200 floats per input pixel per image in a batch.
        mem = TF_RUNTIME_MB + batch_size * 200 * 4 * pixels_mb * 3 + 1500
    else:
        mem = PYTHON_MB + 250
    return int(mem) + JOB_OVERHEAD_MB


#: Per-image tables (aggregate, ensemble, report): a base and a cost per image row,
#: from bench/aggregate_scale.py: aggregate peaks at 170 MB for 100,000 images and
#: 578 MB for 1,000,000 (0.46 KB a row); the job overhead comes on top as a margin.
TABLE_BASE_MB = 200
TABLE_ROW_KB = 0.5


def table_mem_mb(images: int) -> int:
    """Peak memory (MB) of a step that reads and scores per-image tables of ``images`` rows."""
    return int(TABLE_BASE_MB + images * TABLE_ROW_KB / 1024) + JOB_OVERHEAD_MB


def machine_memory_mb(reserve_mb: int = 1024) -> int:
    """Physical memory of this machine minus a reserve for the OS, in MB."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    return max(int(total - reserve_mb), 1024)


@dataclass(frozen=True)
class NodePlan:
    """How many processes share a node and how many threads each gets."""

    processes: int
    threads: int
    node_cores: int
    node_mem_mb: int
    proc_mem_mb: int

    @property
    def busy_cores(self) -> int:
        return self.processes * self.threads

    def describe(self) -> str:
        """One line for people: this plan against one single-threaded process per slot."""
        procs = f"{self.processes} process{'es' if self.processes != 1 else ''}"
        threads = f"{self.threads} thread{'s' if self.threads != 1 else ''}"
        return (
            f"{procs} x {threads} = {self.busy_cores} of "
            f"{self.node_cores} cores busy, {self.processes * self.proc_mem_mb} of "
            f"{self.node_mem_mb} MB memory (single-threaded: {self.processes} of "
            f"{self.node_cores} cores)"
        )


def parse_size_mb(text: str | int) -> int:
    """``64G``, ``11GB``, ``512M``, ``2048`` (MB) -> megabytes."""
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", str(text), re.IGNORECASE)
    if not m:
        raise ValueError(f"not a memory size: {text!r} (use e.g. 64G, 11GB, 512M)")
    scale = {"": 1, "K": 1 / 1024, "M": 1, "G": 1024, "T": 1024**2}[m.group(2).upper()]
    return int(float(m.group(1)) * scale)


def plan_node(
    node_mem_mb: int,
    node_cores: int,
    proc_mem_mb: int,
    reserve_mb: int = NODE_RESERVE_MB,
    node_gpus: int = 0,
) -> NodePlan:
    """Memory decides how many processes fit; threads fill the cores it would leave idle.

    processes = min(cores, floor((node memory - reserve) / per-process memory),
    GPUs where the node has any: one GPU each); threads per process = floor(cores /
    processes).
    """
    fits = (node_mem_mb - reserve_mb) // proc_mem_mb
    if fits < 1:
        raise ValueError(
            f"one process needs {proc_mem_mb} MB but the node has "
            f"{node_mem_mb - reserve_mb} MB after the {reserve_mb} MB reserve"
        )
    processes = min(node_cores, fits, node_gpus or node_cores)
    return NodePlan(processes, node_cores // processes, node_cores, node_mem_mb, proc_mem_mb)


@dataclass(frozen=True)
class Node:
    """The compute node jobs are planned for (config ``cluster``; default: this machine)."""

    mem_mb: int
    cores: int
    reserve_mb: int = NODE_RESERVE_MB
    margin: float = MARGIN
    gpus: int = 0

    @classmethod
    def from_config(cls, cluster: dict, slurm: bool | None = False) -> "Node":
        """Config ``cluster``; what it leaves out comes from Slurm (``slurm``) or this machine.

        ``slurm=None`` (a dry run, whose executor Snakemake does not tell): Slurm where
        ``sinfo`` answers, else this machine.
        """
        mem, cores = cluster.get("node_mem"), cluster.get("node_cores")
        found = None
        if slurm is None:  # ask sinfo only where the config leaves something to ask
            given = mem and cores and cluster.get("node_gpus") is not None
            found = None if given else slurm_node()
            slurm = found is not None
        elif slurm and not (mem and cores):
            found = slurm_node()
        if mem and cores:
            found = None  # the config's node; sinfo's only told us Slurm is there
        reserve = cluster.get("reserve")
        if reserve is None:  # Slurm packs jobs into all of a node's RealMemory
            reserve = 0 if found and not mem else NODE_RESERVE_MB
        if found:
            mem, cores = mem or found[0], cores or found[1]
        gpus = cluster.get("node_gpus")
        if gpus is None:
            gpus = slurm_gpus() if slurm else gpu_count()
        return cls(
            parse_size_mb(mem) if mem else machine_memory_mb(reserve_mb=0),
            int(cores or os.cpu_count() or 1),
            parse_size_mb(reserve),
            float(cluster.get("memory_margin", 0.2)),
            int(gpus),
        )


#: Where Slurm's commands find their configuration: SLURM_CONF, the default path, and
#: the cache of a configless node (slurmd's, or sackd's on a login node).
SLURM_CONFS = (
    "/etc/slurm/slurm.conf",
    "/run/slurm/conf/slurm.conf",
    "/var/spool/slurmd/conf-cache/slurm.conf",
)


def slurm_configured() -> bool:
    """Whether this machine has a Slurm configuration for sinfo to read (without one, sinfo
    retries for 60 s before it gives up: a laptop with Slurm's client installed)."""
    conf = os.environ.get("SLURM_CONF")
    return any(os.path.exists(p) for p in ([conf] if conf else SLURM_CONFS))


def _sinfo_default(fields: str) -> list[list[str]]:
    """sinfo's rows (partition first, then ``fields``) of the default partition (all where
    none is marked); [] where sinfo is missing, has no configuration or answers nothing."""
    if not slurm_configured():
        return []
    try:
        out = subprocess.run(
            ["sinfo", "--noheader", "--format", f"%P {fields}"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    width = len(fields.split()) + 1
    rows = [line.split() for line in out.splitlines() if len(line.split()) == width]
    return [r for r in rows if r[0].endswith("*")] or rows


def slurm_node() -> tuple[int, int] | None:
    """(memory MB, cores) of the smallest node in Slurm's default partition, from ``sinfo``.

    None where sinfo is missing or answers nothing usable.
    """
    try:
        sizes = [(int(m.rstrip("+")), int(c.rstrip("+"))) for _, m, c in _sinfo_default("%m %c")]
    except ValueError:
        return None
    return (min(m for m, _ in sizes), min(c for _, c in sizes)) if sizes else None


def slurm_gpus() -> int:
    """GPUs of the smallest node in Slurm's default partition (sinfo's Gres: gpu[:type]:N)."""
    counts = [gres_gpus(g) for _, g in _sinfo_default("%G")]
    return min(counts) if counts else 0


def gres_gpus(gres: str) -> int:
    """The GPU count of a Gres string (``gpu:a100:4(S:0-1),shard:8`` -> 4; ``(null)`` -> 0)."""
    for part in gres.split(","):
        fields = part.split("(")[0].split(":")
        if fields[0] == "gpu" and fields[-1].isdigit():
            return int(fields[-1])
    return 0


def _read_json(path: str | os.PathLike[str] | None) -> dict | None:
    if path and Path(path).is_file():
        with open(path) as fh:
            return json.load(fh)
    return None


def with_margin(peak_mb: float, margin: float = MARGIN) -> int:
    """What a job asks for a process of ``peak_mb``: the margin, plus the job's Snakemake."""
    return int(peak_mb * (1 + margin)) + JOB_OVERHEAD_MB


def predict_memory_mb(
    footprint: str | None,
    calibration: str | None,
    image_size: int,
    shard_size: int,
    batch_size: int | str = "auto",
    tta: bool = False,
    margin: float = MARGIN,
    gpus: int = 0,
) -> tuple[int, str]:
    """Memory (MB) to ask for one predict process, and where the figure comes from.

    The calibration's measured peak RSS when it exists, else the model-based
    estimate, else the coarse figure; measured and estimated figures get
    ``margin`` on top, plus the job's own Snakemake process. ``batch_size: auto``
    counts the batch a process on such a node (``gpus`` a node) may take.
    """
    batch_size = predict_host_batch(batch_size, gpus)
    measured = _read_json(calibration)
    if measured:
        return with_margin(measured["peak_rss_mb"], margin), "measured"
    fp = _read_json(footprint)
    if fp:
        est = peak_memory(
            ModelFootprint(**fp),
            "predict",
            batch_size,
            shard_images=shard_size,
            stored_size=image_size,
            tta_views=5 if tta else 1,
        )
        return with_margin(est.total, margin), "estimated"
    return coarse_mem_mb("predict", image_size, shard_size, batch_size), "default"


def train_memory_mb(
    footprint: str | None,
    exp: Experiment,
    ranks: int,
    examples: int,
    image_size: int,
    margin: float = MARGIN,
    world: int | None = None,
) -> int:
    """Memory (MB) of a train job on one node: its ``ranks`` there, each with its data share.

    ``world``: ranks of the whole job (default ``ranks``, one node); the
    examples are shared among them.
    """
    batch = exp.host_batch
    fp = _read_json(footprint)
    if not fp:
        return ranks * coarse_mem_mb("train", image_size, 0, batch)

    est = peak_memory(
        ModelFootprint(**fp),
        "train",
        batch,
        optimizer=exp.optimizer,
        examples=examples // max(world or ranks, 1),
        stored_size=image_size,
    )
    return with_margin(ranks * est.total, margin)
