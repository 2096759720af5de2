#!/usr/bin/env bash
# Run the boneage workflow on the embedded default config (a synthetic cohort
# and a small CPU model), set-up included. Extra arguments go to snakemake,
# e.g. `bash scripts/run.sh -n` for a dry run or `--configfile my.yaml`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
snakemake --profile profiles/local "$@"
case " $* " in *" -n "*|*" --dry-run "*) exit 0 ;; esac
boneage summary --results results
