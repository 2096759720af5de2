"""Shards: preprocessed images and labels, one self-contained store per job.

A shard holds N accepted images of one cohort:

============  ===================  ==========================================
``images``    uint8 (N, S, S, 1)   preprocessed, white bone on black
``sex``       uint8 (N,)           1 = male, 0 = female, 2 = not recorded
``boneage``   float32 (N,)         label, months
``true``      float32 (N,)         reference bone age, NaN where unknown
``row``       int64 (N,)           source row (links back to the manifest)
``ids``       list[str]            study ids (Zarr: group attribute)
============  ===================  ==========================================

Each shard also stores a SHA-256 of its contents (``digest`` attribute): the
cohort index lists it, and a trained model records the digests it saw.

Zarr v3 (a directory ``*.zarr``) is the default; HDF5 (``*.h5``) by config.
A Zarr shard is 5 files, whatever its size: ``images`` is chunked by
:data:`CHUNK` images and the chunks are packed into one file by Zarr's
sharding codec, and the four per-image label arrays are the columns of one
float64 array ``labels`` (N, 4) (row numbers are exact in float64 up to 2**53).
Parallel filesystems (Lustre, GPFS) handle millions of small files badly; a
10,000-shard cohort is 50,000 files, not 500,000. Shards written before this
layout (five separately chunked arrays) are still read.
Both formats are written to a temporary sibling and renamed into place, so a
shard is either complete or absent.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from boneage import qc
from boneage.atomic import atomic_path
from boneage.imageio import DecodeError, decode
from boneage.preprocess import prepare

FORMATS = {"zarr": ".zarr", "hdf5": ".h5"}
CHUNK = 64
#: Columns of a Zarr shard's ``labels`` array, in order.
LABELS = ("sex", "boneage", "true", "row")
#: A film's sex in a shard (2: not recorded; the model sees 0 and 1 and averages).
SEX_CODES = {"M": 1, "F": 0, "U": 2}
#: Columns of a shard's per-row QC verdicts (merged into the manifest).
VERDICT_COLUMNS = ["row", "status", "reason", "inverted", "shard", "qc"]


@dataclass
class Shard:
    """The contents of one shard (see the module docstring for shapes)."""

    images: np.ndarray
    sex: np.ndarray
    boneage: np.ndarray
    true: np.ndarray
    row: np.ndarray
    ids: list[str]

    def __len__(self) -> int:
        return len(self.ids)

    def digest(self) -> str:
        """SHA-256 (hex) of what the shard holds: ids, labels, row numbers and pixels.

        Stored with the shard when it is written (:func:`shard_digest` reads it
        back); the cohort index lists it, so a model knows the data it saw.
        """
        h = hashlib.sha256("\n".join(self.ids).encode())
        for name, dtype in (("sex", "u1"), ("boneage", "<f4"), ("true", "<f4"), ("row", "<i8")):
            h.update(np.ascontiguousarray(getattr(self, name), dtype).tobytes())
        h.update(str(self.images.shape).encode())
        h.update(np.ascontiguousarray(self.images, np.uint8).tobytes())
        return h.hexdigest()


def write_shard(path: str | os.PathLike[str], shard: Shard) -> None:
    """Write ``shard`` atomically; the format follows the suffix (.zarr or .h5)."""
    path = Path(path)
    digest = shard.digest()
    arrays = {
        "images": shard.images,
        "sex": shard.sex,
        "boneage": shard.boneage,
        "true": shard.true,
        "row": shard.row,
    }
    if path.suffix == ".zarr":
        import zarr
        from zarr.storage import LocalStore

        n = len(shard.ids)
        with atomic_path(path, is_dir=True) as tmp:
            root = zarr.open_group(store=LocalStore(str(tmp)), mode="w", zarr_format=3)
            images = shard.images
            chunk = (CHUNK,) + images.shape[1:]
            whole = (max(-(-n // CHUNK), 1) * CHUNK,) + images.shape[1:]  # one shard file
            img = root.create_array(
                "images", shape=images.shape, chunks=chunk, shards=whole, dtype=images.dtype
            )
            labels = np.stack([np.asarray(arrays[k], np.float64) for k in LABELS], axis=1)
            lab = root.create_array(
                "labels", shape=(n, len(LABELS)), chunks=(max(n, 1), len(LABELS)), dtype="f8"
            )
            if n:
                img[...] = images
                lab[...] = labels.reshape(n, len(LABELS))
            root.attrs["ids"] = list(shard.ids)
            root.attrs["count"] = n
            root.attrs["labels"] = list(LABELS)
            root.attrs["digest"] = digest
    elif path.suffix == ".h5":
        import h5py

        with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
            for name, data in arrays.items():
                chunks = (min(CHUNK, max(len(data), 1)),) + data.shape[1:] if len(data) else None
                f.create_dataset(
                    name, data=data, chunks=chunks, compression="gzip" if name == "images" else None
                )
            f.create_dataset(
                "ids", data=np.array(shard.ids, dtype=object), dtype=h5py.string_dtype()
            )
            f.attrs["digest"] = digest
    else:
        raise ValueError(f"unknown shard format for {path} (use .zarr or .h5)")


def _zarr_array(group: Any, name: str) -> np.ndarray:
    """A whole array of a Zarr group, in memory."""
    return np.asarray(group[name][...])


def read_shard(path: str | os.PathLike[str], images: bool = True) -> Shard:
    """Read a shard into memory; ``images=False`` skips the pixels (labels only)."""
    path = Path(path)
    names = (
        ("images", "sex", "boneage", "true", "row") if images else ("sex", "boneage", "true", "row")
    )
    if path.suffix == ".zarr":
        import zarr

        root = zarr.open_group(str(path), mode="r")
        attrs: dict[str, Any] = dict(root.attrs)
        if "labels" in attrs:
            table = _zarr_array(root, "labels")
            dtypes = {"sex": np.uint8, "boneage": np.float32, "true": np.float32, "row": np.int64}
            get = {k: table[:, i].astype(dtypes[k]) for i, k in enumerate(attrs["labels"])}
            if images:
                get["images"] = _zarr_array(root, "images")
        else:  # the layout before sharding: one array per name
            get = {name: _zarr_array(root, name) for name in names}
        ids = [str(i) for i in attrs["ids"]]
    else:
        import h5py

        with h5py.File(path, "r") as f:
            get = {name: f[name][...] for name in names}
            ids = [i.decode() if isinstance(i, bytes) else str(i) for i in f["ids"][...]]
    get.setdefault("images", np.zeros((0, 0, 0, 1), np.uint8))
    return Shard(ids=ids, **get)


def shard_digest(path: str | os.PathLike[str]) -> str:
    """The content digest written with a shard (:meth:`Shard.digest`), computed for older ones."""
    path = Path(path)
    if path.suffix == ".zarr":
        import zarr

        stored = zarr.open_group(str(path), mode="r").attrs.get("digest")
    else:
        import h5py

        with h5py.File(path, "r") as f:
            stored = f.attrs.get("digest")
    return str(stored) if stored else read_shard(path).digest()


def stored_size(paths: Sequence[str | os.PathLike[str]]) -> int | None:
    """Side of the stored images (from metadata; None when there are no shards)."""
    for p in map(Path, paths):
        if p.suffix == ".zarr":
            import zarr

            images: Any = zarr.open_group(str(p), mode="r")["images"]
            return int(images.shape[1])
        import h5py

        with h5py.File(p, "r") as f:
            return int(f["images"].shape[1])
    return None


def build_shard(
    rows: pd.DataFrame, out: str | os.PathLike[str], size: int, shard_name: str
) -> pd.DataFrame:
    """Decode, QC and preprocess ``rows`` (manifest rows with ``abspath``) into one shard.

    Returns the per-row verdicts (:data:`VERDICT_COLUMNS`; ``qc`` is the rule
    that decided, see :class:`boneage.qc.QCResult`); a bad image is rejected
    with its reason, never raised.
    """
    images, keep, verdicts = [], [], []
    for r in tqdm(
        rows.itertuples(index=False), total=len(rows), desc=shard_name, unit="img", mininterval=5.0
    ):
        reason, inverted, rule = None, False, ""
        try:
            img = decode(r.abspath, max_side=max(2 * size, 512))  # enough for QC and resize
            verdict = qc.check(img, getattr(r, "body_part", None), getattr(r, "modality", None))
            reason, inverted, rule = verdict.reason, verdict.inverted, verdict.rule
            if reason is None:
                images.append(prepare(1.0 - img if inverted else img, size))
                keep.append(r)
        except DecodeError as exc:
            reason, rule = exc.reason, exc.detail
        verdicts.append(
            {
                "row": r.row,
                "status": "rejected" if reason else "accepted",
                "reason": reason,
                "inverted": inverted,
                "shard": shard_name,
                "qc": rule,
            }
        )
    shard = Shard(
        images=(np.stack(images)[..., None] if images else np.zeros((0, size, size, 1), np.uint8)),
        sex=np.array([SEX_CODES[r.sex] for r in keep], np.uint8),
        boneage=np.array([r.boneage for r in keep], np.float32),
        true=np.array([r.true_boneage for r in keep], np.float32),
        row=np.array([r.row for r in keep], np.int64),
        ids=[str(r.id) for r in keep],
    )
    write_shard(out, shard)
    return pd.DataFrame(verdicts, columns=VERDICT_COLUMNS)
