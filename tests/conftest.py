"""Shared fixtures: tiny synthetic cohorts and shards, made on the fly."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parent.parent
#: The real films travel with the project (tests/data/README.md); ../shared/data is their origin.
REAL_DATA = REPO / "tests" / "data"
SHARED_DATA = REPO.parent / "shared" / "data"
REAL_HANDS = REAL_DATA / "real-hands"
REAL_NONHANDS = REAL_DATA / "real-nonhand"
REAL_SHEET = REAL_DATA / "hospital-sheet" / "labels.csv"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slurm tests first and on one xdist worker (they share Slurm's ports, and are the
    longest chain), then the heavy tier's other tests, then the rest: the longest start
    first, so the workers finish together."""
    slurm = [item for item in items if item.get_closest_marker("slurm")]
    for item in slurm:
        item.add_marker(pytest.mark.xdist_group("slurm"))
    heavy = [i for i in items if i.get_closest_marker("heavy") and i not in slurm]
    items[:] = slurm + heavy + [i for i in items if i not in slurm and i not in heavy]


def pytest_collection_finish(session: pytest.Session) -> None:
    """Refuse to run the Slurm tests on several xdist workers at once (a pytest or xdist
    that no longer honours ``xdist_group`` would start two clusters on the same ports)."""
    if not session.config.getoption("loadgroup", False):
        return
    split = [i.nodeid for i in session.items if i.get_closest_marker("slurm")]
    if any(not nodeid.endswith("@slurm") for nodeid in split):
        raise pytest.UsageError(
            "xdist did not group the Slurm tests on one worker (see requirements-test.txt)"
        )


@pytest.fixture(scope="session")
def tiny_cohort(tmp_path_factory) -> Path:
    """A 40-image synthetic cohort in the RSNA layout (with non-hands and inversions)."""
    from boneage.synth.cohort import make_cohort

    out = tmp_path_factory.mktemp("cohort")
    make_cohort(out, 40, seed=5, nonhand_share=0.1, inverted_share=0.1)
    return out


@pytest.fixture(scope="session")
def tiny_shards(tmp_path_factory, tiny_cohort) -> tuple[list[str], pd.DataFrame]:
    """The tiny cohort ingested at 32 px into Zarr shards of 12, with its split."""
    from boneage.manifest import check_rows, cut_shards, finalise
    from boneage.shards import build_shard
    from boneage.sources.rsna import read_rsna
    from boneage.split import make_split

    out = tmp_path_factory.mktemp("shards")
    rows = read_rsna(tiny_cohort / "labels.csv", tiny_cohort / "images", tiny_cohort / "truth.csv")
    checked = check_rows(rows, tiny_cohort / "images")
    by_row = checked.set_index("row")
    paths, verdicts = [], []
    for plan in cut_shards(checked, 12):
        path = out / f"{plan['shard']}.zarr"
        verdicts.append(
            build_shard(by_row.loc[plan["rows"]].reset_index(), path, 32, plan["shard"])
        )
        paths.append(str(path))
    manifest = finalise(checked, verdicts)
    return paths, make_split(manifest, seed=1, val=0.25, test=0.25)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A random-weight small_cnn for 32 px input, saved with its footprint beside it."""
    from boneage.experiment import Experiment
    from boneage.memory.model import experiment_footprint
    from boneage.models import build_model

    out = tmp_path_factory.mktemp("model")
    build_model("small_cnn", 32, 100.0, 40.0).save(out / "model.keras")
    experiment_footprint(Experiment("tiny", image_size=32)).save(out / "footprint.json")
    return out / "model.keras"


def need(present: bool, what: str) -> None:
    """Skip a test whose tool is missing; in CI (``CI`` set) fail: set-up installs it there."""
    if present:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing in CI: scripts/setup.sh --test must install it")
    pytest.skip(f"{what} is missing (scripts/setup.sh --test installs it)")


def real_films(folder: Path) -> list[Path]:
    """The real radiographs in a tests/data folder (they travel with the project)."""
    files = sorted(p for p in folder.glob("*") if p.suffix.lower() in (".png", ".jpg"))
    if not files:
        pytest.fail(f"real radiographs not found in {folder} (see tests/data/README.md)")
    return files


@pytest.fixture
def real_hands() -> list[Path]:
    """The 10 real hand radiographs in tests/data/real-hands."""
    return real_films(REAL_HANDS)


@pytest.fixture
def real_nonhands() -> list[Path]:
    """The 6 real chest radiographs in tests/data/real-nonhand (QC must reject them)."""
    return real_films(REAL_NONHANDS)


def write_png(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    """Save an array as PNG (helper for tests that need odd image files)."""
    from PIL import Image

    Image.fromarray(array, mode=mode).save(path)
    return path


def run_folder(tmp_path_factory, name: str) -> Path:
    """A folder for the whole run, the same for every xdist worker (built in ``shared_build``)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's base folder, above every worker's own
    return root / name


@contextlib.contextmanager
def shared_build(folder: Path):
    """Hold the folder's lock (one builder, others wait); yields whether it is still to build.

    The folder is marked built when the block ends without an error.
    """
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f"{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield not (folder / ".built").exists()
        (folder / ".built").touch()


@pytest.fixture(scope="session")
def workflow_report(tmp_path_factory) -> Path:
    """results/report.html of the tiny workflow, built by Snakemake (real shards and films).

    Built once per run, even with several xdist workers. Tests that change the run
    work on a copy of its folder (mtimes kept).
    """
    import yaml
    from harness import TINY

    from boneage.workflow_run import snakemake

    work = run_folder(tmp_path_factory, "workflow")
    with shared_build(work) as todo:
        if todo:
            (work / "config.yaml").write_text(yaml.safe_dump(TINY))
            proc = snakemake(work)
            assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return work / "results/report.html"
