"""Steps of ``workflow/rules/config.smk``: the run's configuration."""

from __future__ import annotations

import argparse
import sys

from boneage.cli.args import add_step


def cmd_check_config(a: argparse.Namespace) -> None:
    """Validate a config file against the schema, naming each bad key."""
    from boneage.config import ConfigError, load

    try:
        load(a.config)
    except ConfigError as exc:
        sys.exit(f"{a.config}: {exc}")
    print(f"{a.config}: valid")


def register(sub) -> None:
    """Add this module's subcommands."""
    add_step(sub, "check-config", cmd_check_config).add_argument("config")
