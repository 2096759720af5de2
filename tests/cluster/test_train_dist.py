"""Horovod: N ranks hold identical weights that match one process on the global batch."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, need

pytestmark = [pytest.mark.slow, pytest.mark.mpi]
HOROVODRUN = shutil.which("horovodrun", path=str(Path(sys.executable).parent))
SCRIPT = str(REPO / "tests" / "dist_step.py")


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONPATH": str(REPO),
    }


def _weights(path: Path) -> list[np.ndarray]:
    with np.load(path) as f:
        return [f[k] for k in sorted(f.files, key=lambda k: int(k.split("_")[1]))]


@pytest.mark.parametrize("controller", ["--gloo", "--mpi"])
def test_two_ranks_match_one_process(tmp_path, controller):
    need(HOROVODRUN is not None, "horovodrun")
    single = subprocess.run(
        [sys.executable, SCRIPT, str(tmp_path)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert single.returncode == 0, single.stderr[-2000:]
    dist = subprocess.run(
        [HOROVODRUN, "-np", "2", controller, sys.executable, SCRIPT, str(tmp_path)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert dist.returncode == 0, dist.stdout[-2000:] + dist.stderr[-2000:]
    one = _weights(tmp_path / "weights_rank0_of1.npz")
    r0 = _weights(tmp_path / "weights_rank0_of2.npz")
    r1 = _weights(tmp_path / "weights_rank1_of2.npz")
    for a, b in zip(r0, r1):
        np.testing.assert_array_equal(a, b)  # identical on both ranks
    for a, b in zip(r0, one):  # same as one process on the same global batch
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert any(np.abs(a).sum() > 0 for a in r0)
