"""GPU sharing on a GPU host that lacks the TensorFlow stack (PyTorch stands in for CUDA).

    PYTHONPATH=. python3 scripts/gpu_host_check.py [OUT.json]

Run on the one GPU machine this project was lent (an H200 that cannot reach a
package registry, so TensorFlow's 600 MB wheel and its CUDA 12 wheels cannot
be installed there; its Python has PyTorch). It checks, on the real driver:
the GPU count and memory as ``nvidia-smi`` reports them to boneage, the node a
dry run plans for, ``setup.sh``'s GPU detection, that a step with
``CUDA_VISIBLE_DEVICES=`` sees no GPU, that a claimed GPU is the one a CUDA
process sees, that a second claim waits and one after ``kill -9`` of the holder
succeeds; and the planner's batch per backbone at 512 px on this GPU against
one train step of the same torchvision network at that batch (peak memory).
Footprints: docs/gpu-host/footprints.json (TensorFlow models, counted on CPU);
results: docs/gpu-host/h200-2026-12-04.json.
"""

import json
import os
import subprocess
import sys
import time
from typing import Any

os.environ["BONEAGE_GPU_LOCKS"] = "/tmp/boneage-locks"
from dataclasses import asdict  # noqa: E402

from boneage import gpus  # noqa: E402
from boneage.launch import gpu_count, gpu_memory_mb  # noqa: E402
from boneage.memory.model import ModelFootprint, gpu_batch_size  # noqa: E402
from boneage.memory.model import gpu_memory_mb as planned  # noqa: E402
from boneage.memory.node import Node  # noqa: E402

r: dict[str, Any] = {}
r["nvidia_smi_L"] = subprocess.run(
    ["nvidia-smi", "-L"], capture_output=True, text=True
).stdout.strip()
r["driver"] = subprocess.run(
    ["nvidia-smi", "--query-gpu=driver_version,name", "--format=csv,noheader"],
    capture_output=True,
    text=True,
).stdout.strip()
r["gpu_count"] = gpu_count()
r["gpu_memory_mb"] = gpu_memory_mb()
r["machine_gpus"] = gpus.machine_gpus()
r["node_dry_run"] = asdict(Node.from_config({}, slurm=None))
r["setup_sh_detects_gpu"] = (
    subprocess.run(["bash", "-c", "nvidia-smi -L 2>/dev/null | grep -q '^GPU'"]).returncode == 0
)

SEES = "import torch; print(torch.cuda.device_count())"
env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
r["hidden_step_sees"] = subprocess.run(
    [sys.executable, "-c", SEES], env=env, capture_output=True, text=True
).stdout.strip()

HOLD = (
    "import time; from boneage import gpus; c = gpus.claim(1);"
    "import os, torch; print(c.ids, os.environ['CUDA_VISIBLE_DEVICES'],"
    " torch.cuda.device_count(), flush=True); time.sleep(600)"
)
holder = subprocess.Popen([sys.executable, "-c", HOLD], stdout=subprocess.PIPE, text=True)
assert holder.stdout is not None
r["holder_claimed_visible_seen"] = holder.stdout.readline().strip()
t = time.monotonic()
try:
    gpus.claim(1, wait_s=3, poll_s=0.2)
    r["second_claim_while_held"] = "got a GPU: WRONG"
except TimeoutError as exc:
    r["second_claim_while_held"] = f"waited: {exc}"
holder.kill()
holder.wait()
t = time.monotonic()
c = gpus.claim(1, wait_s=10, poll_s=0.1)
r["claim_after_kill9"] = {
    "ids": c.ids,
    "seconds": round(time.monotonic() - t, 2),
    "CUDA_VISIBLE_DEVICES": os.environ["CUDA_VISIBLE_DEVICES"],
}
c.release()

# The planner's batch on this GPU, and a PyTorch (torchvision) network of the same
# architecture trained one step at that batch: its peak against the plan.
import torch  # noqa: E402
import torchvision  # noqa: E402

TORCH = {
    "resnet50": torchvision.models.resnet50,
    "vgg19": torchvision.models.vgg19,
    "efficientnetb0": torchvision.models.efficientnet_b0,
}
footprints = json.load(open("docs/gpu-host/footprints.json"))
mem = r["gpu_memory_mb"]
rows = {}
for key, p in footprints.items():
    fp = ModelFootprint(**p)
    row = {
        "train_batch": gpu_batch_size(fp, mem, step="train"),
        "predict_batch": gpu_batch_size(fp, mem, step="predict"),
    }
    row["planned_train_mb"] = round(planned(fp, row["train_batch"], "train"))
    if fp.backbone in TORCH:
        net = TORCH[fp.backbone](num_classes=1).cuda()
        opt = torch.optim.AdamW(net.parameters())
        torch.cuda.reset_peak_memory_stats()
        x = torch.rand(row["train_batch"], 3, fp.image_size, fp.image_size, device="cuda")
        for _ in range(2):
            opt.zero_grad()
            net(x).square().mean().backward()
            opt.step()
        torch.cuda.synchronize()
        row["torch_train_peak_mb"] = round(torch.cuda.max_memory_allocated() / 2**20)
        row["torch_reserved_mb"] = round(torch.cuda.max_memory_reserved() / 2**20)
        del net, opt, x
        torch.cuda.empty_cache()
    rows[key] = row
r["batches"] = rows
json.dump(r, open(sys.argv[1] if len(sys.argv) > 1 else "gpu_host.json", "w"), indent=1)
print(json.dumps(r, indent=1))
