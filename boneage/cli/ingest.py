"""Steps of ``workflow/rules/ingest.smk``: manifest, shards, cohort index."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from boneage.atomic import (
    load_json,
    read_tsv,
    read_tsv_span,
    tsv_dtypes,
    write_json,
    write_tsv,
    write_tsv_indexed,
)
from boneage.cli.args import add_step
from boneage.config import section_defaults


def cmd_manifest(a: argparse.Namespace) -> None:
    """Check source rows and cut them into shards (the shard list)."""
    from boneage.manifest import add_spans, build_manifest

    checked, shards, unmatched = build_manifest(load_json(a.spec), a.shard_size)
    add_spans(shards, checked["row"].to_numpy(), write_tsv_indexed(a.rows, checked))
    columns = tsv_dtypes(checked)  # a shard job reads its span of the rows as these
    write_json(
        a.shard_list, {"shards": shards, "columns": columns, "unmatched_corrections": unmatched}
    )
    print(
        f"{len(checked)} rows: {int((checked.status == 'accepted').sum())} pass table checks, "
        f"{len(shards)} shards"
    )
    if unmatched:
        print(
            f"warning: {len(unmatched)} correction(s) name ids not in the source: "
            f"{', '.join(unmatched[:10])}"
        )


def cmd_shard(a: argparse.Namespace) -> None:
    """Decode, QC and preprocess one shard."""
    from boneage.shards import build_shard

    shard_list = load_json(a.shard_list)
    by_name = {s["shard"]: s for s in shard_list["shards"]}
    if a.shard not in by_name:
        sys.exit(f"shard {a.shard!r} is not in {a.shard_list}")
    entry = by_name[a.shard]
    try:  # a span of another rows table: unparseable, or other rows
        rows = read_tsv_span(a.rows, entry.get("span"), shard_list.get("columns"))
        rows = rows.set_index("row")
        mismatch = bool(set(entry["rows"]).difference(rows.index))
    except ValueError:
        mismatch = True
    if mismatch:
        sys.exit(
            f"{a.rows} does not hold the rows {a.shard_list} gives {a.shard}: rerun the manifest"
        )
    rows = rows.loc[entry["rows"]].reset_index()
    verdicts = build_shard(rows, a.out, a.size, a.shard)
    write_tsv(a.qc, verdicts)
    print(f"{a.shard}: {int((verdicts.status == 'accepted').sum())}/{len(verdicts)} images kept")


def cmd_index(a: argparse.Namespace) -> None:
    """Merge shard verdicts into the manifest and cohort index."""
    from boneage.manifest import finalise, summarise
    from boneage.shards import shard_digest

    manifest = finalise(read_tsv(a.rows), [read_tsv(p) for p in a.qc])
    write_tsv(a.manifest, manifest)
    counts = manifest[manifest.status == "accepted"].groupby("shard").size()
    shards = [
        {
            "shard": Path(p).stem,
            "path": p,
            "images": int(counts.get(Path(p).stem, 0)),
            "digest": shard_digest(p),  # what the shard holds: a model records it
        }
        for p in a.shards
    ]
    write_json(a.index, {"shards": shards, "summary": summarise(manifest)})
    print(json.dumps(summarise(manifest)))


def register(sub) -> None:
    """Add this module's subcommands."""
    s = add_step(sub, "manifest", cmd_manifest)
    s.add_argument("--spec", required=True, help="the cohort's config entry: a JSON file")
    s.add_argument("--shard-size", type=int, default=section_defaults("shards")["size"])
    s.add_argument("--rows", required=True, help="output: checked rows (TSV)")
    s.add_argument("--shard-list", required=True, help="output: the shard list (JSON)")

    s = add_step(sub, "shard", cmd_shard)
    s.add_argument("--rows", required=True)
    s.add_argument("--shard-list", required=True, help="the manifest's shard list (JSON)")
    s.add_argument("--shard", required=True)
    s.add_argument("--size", type=int, required=True)
    s.add_argument("--out", required=True, help="output shard (.zarr or .h5)")
    s.add_argument("--qc", required=True, help="output: per-row verdicts (TSV)")

    s = add_step(sub, "index", cmd_index)
    s.add_argument("--rows", required=True)
    s.add_argument("--qc", nargs="*", default=[])
    s.add_argument("--shards", nargs="*", default=[])
    s.add_argument("--manifest", required=True)
    s.add_argument("--index", required=True)
