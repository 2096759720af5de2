"""boneage.log: timestamped lines, progress throttled to one line per interval."""

from __future__ import annotations

import logging
import re
import subprocess
import sys

from boneage.log import Progress


def test_progress_is_throttled_but_always_reports_the_end(caplog):
    log = logging.getLogger("test.progress")
    with caplog.at_level(logging.INFO, logger="test.progress"):
        slow = Progress(log, "predict s00000", 100, every=3600)
        for done in range(1, 101):
            slow.update(done, " images")
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        "predict s00000: 100/100 images"
    ]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="test.progress"):
        every = Progress(log, "epoch 1/2", 3, every=0)
        for done in (1, 2, 3):
            every.update(done, " steps", "loss 1.000")
    assert len(caplog.records) == 3 and "loss 1.000" in caplog.records[0].getMessage()


def test_steps_log_with_timestamps():
    out = subprocess.run(
        [sys.executable, "-m", "boneage.cli", "launch", "--ranks", "1", "--", "true"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d INFO boneage.launch: launch: ", out, re.M)
