"""The README and docs/ show only what runs: each command is run by a test, a bench or CI
(or says why not), and each configuration example is a valid config."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from boneage.config import validate

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
#: A documented command (its start, as written) -> the file that runs it and a string that
#: file holds where it does; or why it is not run.
RUN_BY: dict[str, tuple[str, str] | str] = {
    "bash scripts/run.sh": "not run by a test: the whole default run (6 min on 2 cores, "
    "results/ in the checkout); measured by hand for the README's figures",
    "bash scripts/test.sh --all": (".ci/run", "bash scripts/test.sh --all"),
    "bash scripts/test.sh": (".ci/run", "bash scripts/test.sh"),
    "bash scripts/setup.sh": ("tests/cluster/test_setup_noroot.py", "scripts/setup.sh"),
    "module load": "not run: the site's module system names its own modules",
    "source .venv/bin/activate": "not run: shell state; tests put the venv's tools first on PATH",
    "snakemake --profile profiles/local --configfile": (
        "tests/workflow/test_dgx_gpus.py",
        '"--configfile"',
    ),
    "snakemake --profile profiles/local -n": (
        "tests/workflow/test_integration_workflow.py",
        '"-n"',
    ),
    "snakemake --profile profiles/local train": (
        "tests/workflow/test_integration_workflow.py",
        '"train"',
    ),
    "snakemake --profile profiles/local": (
        "tests/workflow/test_integration_workflow.py",
        "snakemake(",
    ),
    "snakemake --profile dgx train": (
        "tests/workflow/test_integration_workflow.py",
        'profile="dgx"',
    ),
    "snakemake --profile slurm": ("tests/cluster/test_slurm.py", 'profile="slurm"'),
    "boneage estimate": ("tests/workflow/test_integration_workflow.py", '"estimate"'),
    "boneage summary": ("tests/workflow/test_report_numbers.py", '"summary"'),
    "boneage check-config": ("tests/unit/test_cli.py", '"check-config"'),
    "boneage --help": ("tests/unit/test_cli.py", '"--help"'),
    "boneage plan": ("tests/unit/test_memory_node.py", '"plan", "--node-mem"'),
    "boneage footprint": ("tests/unit/test_memory_model.py", '"footprint",'),
    "python bench/": ("bench", ""),  # each bench is its own run (docs/benchmarks.md)
}


def blocks(page: Path) -> list[tuple[str, list[str]]]:
    """The fenced blocks of a Markdown page: (language, lines)."""
    found, lang, lines = [], None, []
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            if lang is None:
                lang, lines = line[3:].strip(), []
            else:
                found.append((lang, lines))
                lang = None
        elif lang is not None:
            lines.append(line)
    return found


def commands(page: Path) -> list[str]:
    """The shell commands a page shows: lines of its bash blocks, and `$ ` lines of others."""
    found = []
    for lang, lines in blocks(page):
        for line in lines:
            if lang != "bash" and not line.startswith("$ "):
                continue
            command = line.removeprefix("$ ").split("  #")[0].strip()
            if command:
                found.append(command)
    return found


def test_every_documented_command_is_run_or_says_why_not():
    unknown, unproven = [], []
    for page in PAGES:
        for command in commands(page):
            keys = [k for k in RUN_BY if command.startswith(k)]
            if not keys:
                unknown.append(f"{page.name}: {command}")
                continue
            where = RUN_BY[max(keys, key=len)]
            if isinstance(where, str):
                continue  # not run, and says why
            path, evidence = where
            if path == "bench":
                path = command.split()[1]
            target = REPO / path
            if not target.is_file() or evidence not in target.read_text():
                unproven.append(f"{page.name}: {command} (no {evidence!r} in {path})")
    assert not unknown, "documented commands nothing runs:\n" + "\n".join(unknown)
    assert not unproven, "\n".join(unproven)


def config_examples() -> list[tuple[str, dict]]:
    """The YAML blocks of the docs (all are configs or parts of one)."""
    return [
        (page.name, yaml.safe_load("\n".join(lines)))
        for page in PAGES
        for lang, lines in blocks(page)
        if lang == "yaml"
    ]


@pytest.mark.parametrize("page,example", config_examples(), ids=lambda v: str(v)[:30])
def test_config_examples_are_valid_configs(page, example, tmp_path, monkeypatch):
    """Each example, put into the embedded default config, passes the config check at a
    site that did what the docs say first: the salt exported, ImageNet weights fetched."""
    from boneage.weights import imagenet_file

    monkeypatch.setenv("BONEAGE_SALT", "a site secret")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    for exp in example.get("experiments", {}).values():
        if exp.get("weights") == "imagenet":  # `boneage fetch-weights` put it there
            imagenet_file(exp["backbone"]).parent.mkdir(parents=True, exist_ok=True)
            imagenet_file(exp["backbone"]).write_bytes(b"")
    config = copy.deepcopy(yaml.safe_load((REPO / "config.yaml").read_text()))
    for key, value in example.items():
        config[key] = value
    validate(config)
