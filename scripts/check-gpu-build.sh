#!/usr/bin/env bash
# Build the GPU stack (scripts/setup.sh --gpu) in a separate venv and check it
# on a machine with or without a GPU: TensorFlow is a CUDA build and loads its
# CUDA, cuDNN and NCCL libraries from the PyPI wheels, and Horovod has NCCL,
# MPI and Gloo. Where a GPU is present it also lists the GPUs TensorFlow sees.
# Not part of CI (about 3 GB of wheels and a ~20 min build on 2 cores).
#   bash scripts/check-gpu-build.sh [VENV]    (default: /tmp/boneage-gpu-venv)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-/tmp/boneage-gpu-venv}
start=$(date +%s)
BONEAGE_VENV="$VENV" bash scripts/setup.sh --gpu --no-apt
"$VENV/bin/python" - <<'PY'
import ctypes, glob, os, subprocess
import tensorflow as tf
import horovod.tensorflow as hvd

assert tf.test.is_built_with_cuda(), "TensorFlow is not a CUDA build"
info = tf.sysconfig.get_build_info()
print(f"tensorflow {tf.__version__}: CUDA {info['cuda_version']}, cuDNN {info['cudnn_version']}")
import nvidia  # the CUDA wheels' namespace package
roots = list(nvidia.__path__)
for lib in ("libcudart.so.12", "libcublas.so.12", "libcudnn.so.8", "libcufft.so.11", "libnccl.so.2"):
    path = next(p for r in roots for p in glob.glob(f"{r}/*/lib/{lib}"))
    ctypes.CDLL(path)
    print(f"loads {lib}: {os.path.relpath(path, os.path.dirname(roots[0]))}")
assert hvd.nccl_built() and hvd.mpi_built() and hvd.gloo_built()
print(f"horovod: nccl_built={hvd.nccl_built()} mpi_built={hvd.mpi_built()} gloo_built={hvd.gloo_built()}")
lib = glob.glob(os.path.join(os.path.dirname(hvd.__file__), "mpi_lib*.so"))[0]
ldd = subprocess.run(["ldd", lib], capture_output=True, text=True).stdout
nccl = [line.strip() for line in ldd.splitlines() if "libnccl" in line]
assert nccl and "not found" not in nccl[0], ldd
print(f"horovod links {nccl[0]}")
print(f"GPUs TensorFlow sees: {tf.config.list_physical_devices('GPU')}")
PY
echo "gpu build check passed in $(( $(date +%s) - start )) s"
