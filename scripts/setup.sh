#!/usr/bin/env bash
# Idempotent set-up for boneage on Debian 12 with Python 3.11:
#   Debian packages (OpenMPI, compilers), a .venv, the pinned Python packages,
#   Horovod 0.28.1 compiled against TensorFlow 2.17.1 with MPI and Gloo, and
#   the boneage package itself (editable).
# A second run skips what is already there (the Horovod build takes ~12 min
# on 2 cores). Options:
#   --test   also install what the tests need: requirements-test.txt, Chromium,
#            and Slurm + munge (tests/localslurm.py starts a one-node Slurm)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=${BONEAGE_VENV:-$ROOT/.venv}
WITH_TEST=0
for arg in "$@"; do
  case "$arg" in
    --test) WITH_TEST=1 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

log() { printf '[setup] %s\n' "$*" >&2; }

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

apt_pkgs=(libopenmpi-dev openmpi-bin cmake g++ make python3-venv python3-dev)
# The report's browser test; the Slurm tests' daemons and client commands.
[ "$WITH_TEST" -eq 1 ] && apt_pkgs+=(chromium slurm-wlm slurm-client munge)
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for c in python3.11 python3; do command -v "$c" >/dev/null && { PY=$c; break; }; done
fi
if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtual environment $VENV with $($PY --version)"
  "$PY" -m venv "$VENV"
fi
VPY="$VENV/bin/python"
PIP=("$VPY" -m pip install -q --disable-pip-version-check)
pip_quiet() { "${PIP[@]}" "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }

reqs=(-r requirements.txt)
[ "$WITH_TEST" -eq 1 ] && reqs+=(-r requirements-test.txt)
stamp="$VENV/.boneage-reqs${WITH_TEST}.sha"
want=$(cat requirements.txt requirements-test.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing pinned Python packages (requirements.txt)"
  pip_quiet --upgrade pip setuptools wheel
  pip_quiet "${reqs[@]}"
  pip_quiet --no-deps -e .
  echo "$want" > "$stamp"
fi

if ! "$VPY" - <<'PY' 2>/dev/null
import horovod, horovod.tensorflow as hvd
assert horovod.__version__ == "0.28.1"
assert hvd.mpi_built() and hvd.gloo_built()
PY
then
  log "building Horovod 0.28.1 against TensorFlow 2.17.1 with MPI and Gloo (about 12 min on 2 cores)"
  HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITH_MPI=1 HOROVOD_WITH_GLOO=1 \
  HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1 \
  MAKEFLAGS="-j$(nproc)" \
    pip_quiet --no-build-isolation --no-deps --no-cache-dir horovod==0.28.1
  "$VPY" -c "import horovod.tensorflow as hvd; assert hvd.mpi_built() and hvd.gloo_built(); print('horovod ok')"
fi

# `snakemake --profile NAME` looks in ./NAME and ~/.config/snakemake/NAME, not in
# ./profiles: link this checkout's profiles there so `--profile dgx` works as typed.
profile_home="${XDG_CONFIG_HOME:-$HOME/.config}/snakemake"
mkdir -p "$profile_home"
for dir in profiles/*/; do
  name=$(basename "$dir"); link="$profile_home/$name"
  if [ -e "$link" ] && [ ! -L "$link" ]; then
    log "keeping $link (not a link); use --profile $ROOT/profiles/$name"
  elif [ "$(readlink "$link" 2>/dev/null)" != "$ROOT/profiles/$name" ]; then
    ln -sfn "$ROOT/profiles/$name" "$link"
    log "profile '$name' -> $ROOT/profiles/$name"
  fi
done

log "ready: $VENV"
