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
# Tests run on BONEAGE_TEST_WORKERS pytest-xdist workers (default: the cores, at most 4;
# 1 runs them in this process); the Slurm tests share one worker.
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
workers=${BONEAGE_TEST_WORKERS:-$(( $(nproc) < 4 ? $(nproc) : 4 ))}
[ "$workers" -gt 1 ] && args=(-n "$workers" --dist loadgroup "${args[@]}")
start=$(date +%s)
status=0
python -m pytest "${tier[@]}" "${args[@]}" || status=$?
elapsed=$(( $(date +%s) - start ))
printf 'tests (%s): %d min %02d s\n' "${tier[*]:-all tiers}" $((elapsed / 60)) $((elapsed % 60))
exit $status
