#!/usr/bin/env bash
# Run the tests (set-up included) and print how long they took.
#   bash scripts/test.sh          the fast tier: everything that proves the product
#                                 works on this machine (unit tests, real films, the
#                                 tiny workflow end to end, learning, estimate, the
#                                 report in Chromium, Horovod with 2 ranks); under
#                                 10 minutes on 2 cores after set-up
#   bash scripts/test.sh --all    adds the heavy tier (marker `heavy`): one- and
#                                 two-node Slurm, the no-root install, job caps, the
#                                 rerun-equals-clean matrix, every source kind and
#                                 every backbone (CI runs this)
# Other arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow"`.
set -euo pipefail
cd "$(dirname "$0")/.."
tier=(-m "not heavy")
args=()
for arg in "$@"; do
  if [ "$arg" = "--all" ]; then tier=(); else args+=("$arg"); fi
done
bash scripts/setup.sh --test
export PATH="$PWD/.venv/bin:$PATH"
start=$(date +%s)
status=0
python -m pytest "${tier[@]}" "${args[@]}" || status=$?
elapsed=$(( $(date +%s) - start ))
printf 'tests (%s): %d min %02d s\n' "${tier[*]:-all tiers}" $((elapsed / 60)) $((elapsed % 60))
exit $status
