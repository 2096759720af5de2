"""One word, one meaning: the names in the package and the workflow, read from the source.

- "profile" is a Snakemake profile (local, dgx, slurm) and nothing else;
- "estimate" is a film's bone-age estimate (``boneage estimate``, ``boneage/film.py``);
- "plan" is a resource plan: the run's jobs (RunPlan) or a node's processes (NodePlan).

What a model holds is its *footprint* (``footprint.json``, ``boneage footprint``), the
memory a process is modelled to need its *peak memory*, and a cohort's shards its
*shard list* (``shards.json``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import boneage

PACKAGE = Path(boneage.__file__).parent
REPO = PACKAGE.parent

#: Where an identifier holding the word may be, by meaning.
HOMES = {
    "profile": {"workflow_run.py"},  # the Snakemake profile a run uses
    "estimat": {"film.py", "cli/predict.py"},  # one film's bone age, `boneage estimate`
}
#: The names that hold "plan": each one a plan of resources.
PLAN_NAMES = {
    "RunPlan",
    "NodePlan",
    "plan_node",
    "predict_plan",
    "_predict_plans",
    "cmd_plan",
    "plan",
    "memory_plans",
    "where_planned",
}


def _identifiers(path: Path) -> set[str]:
    """Names a module defines or uses: functions, classes, arguments, variables, attributes."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
    return names


def test_each_word_names_one_thing_in_the_package():
    misplaced, plans = [], set()
    for path in sorted(PACKAGE.rglob("*.py")):
        where = path.relative_to(PACKAGE).as_posix()
        for name in _identifiers(path):
            for word, homes in HOMES.items():
                if word in name.lower() and where not in homes:
                    misplaced.append(f"{where}: {name}")
            if "plan" in name.lower():
                plans.add(name)
    assert not misplaced, misplaced
    assert plans <= PLAN_NAMES, plans - PLAN_NAMES


def test_the_workflow_names_footprints_and_shard_lists():
    rules = "\n".join(p.read_text() for p in sorted((REPO / "workflow/rules").glob("*.smk")))
    names = re.findall(r"^(?:rule|checkpoint) (\w+):", rules, re.M)
    assert "model_footprint" in names and not [n for n in names if "profile" in n]
    assert "footprint.json" in rules and "shards.json" in rules
    assert not re.search(r"\bprofile\.json|\bplan\.json|boneage profile\b", rules)
    # The step commands: `boneage footprint`, no `boneage profile`.
    from boneage.cli import build_parser

    steps = set(build_parser()._subparsers._group_actions[0].choices)  # noqa: SLF001
    assert "footprint" in steps and "estimate" in steps and "profile" not in steps
