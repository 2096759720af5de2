#!/usr/bin/env bash
# Format, lint and type checks (CI runs them before the tests): ruff format, ruff
# check, mypy (boneage/, bench/, scripts/), snakefmt, snakemake --lint. Fix with: ruff format . && snakefmt .
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
ruff format --check boneage tests bench scripts
ruff check boneage tests bench scripts
mypy
snakefmt --check Snakefile workflow/rules
# --lint asks for a conda env per rule (see the Snakefile); anything else fails.
findings=$(snakemake --lint 2>&1 | grep -E '^\s*\* ' | grep -v "conda environment or container" || true)
if [ -n "$findings" ]; then
  printf 'snakemake --lint:\n%s\n' "$findings" >&2
  exit 1
fi
echo "lint: clean"
