"""Matplotlib figures for the report, returned as inline ``data:`` PNG URIs."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from boneage.metrics import AGE_BANDS, band_of  # noqa: E402

SEX_COLOURS = {"M": "#1f77b4", "F": "#d62728"}


def to_uri(fig) -> str:
    """Render and close a figure; return a base64 PNG data URI."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def scatter(frame: pd.DataFrame, ref: str, title: str) -> str:
    """Predicted vs reference bone age (years), coloured by sex, identity line."""
    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    for sex, g in frame.groupby("sex"):
        ax.scatter(
            g[ref] / 12,
            g["pred"] / 12,
            s=6,
            alpha=0.6,
            label=str(sex),
            color=SEX_COLOURS.get(str(sex), "grey"),
        )
    ax.plot([0, 19], [0, 19], color="black", lw=0.8)
    ax.set(
        xlim=(0, 19),
        ylim=(0, 19),
        xlabel=f"{ref.replace('_', ' ')} (years)",
        ylabel="predicted (years)",
        title=title,
    )
    ax.legend(loc="upper left", fontsize=8)
    return to_uri(fig)


def bland_altman(frame: pd.DataFrame, ref: str, title: str) -> str:
    """Difference (pred - ref) against the mean, with bias and 95 % limits of agreement."""
    mean = (frame["pred"] + frame[ref]) / 2 / 12
    diff = (frame["pred"] - frame[ref]).to_numpy()
    bias, sd = float(np.nanmean(diff)), float(np.nanstd(diff))
    fig, ax = plt.subplots(figsize=(4.6, 3.6))
    ax.scatter(mean, diff, s=6, alpha=0.5, color="#555")
    for y, style in ((bias, "-"), (bias + 1.96 * sd, "--"), (bias - 1.96 * sd, "--")):
        ax.axhline(y, color="#d62728", ls=style, lw=1)
    lo, hi = bias - 1.96 * sd, bias + 1.96 * sd
    ax.set(
        xlabel="mean of predicted and reference (years)",
        ylabel="predicted - reference (months)",
        title=f"{title}\nbias {bias:+.1f} mo, limits of agreement {lo:+.1f} to {hi:+.1f}",
    )
    return to_uri(fig)


def error_by_band(frame: pd.DataFrame, ref: str, title: str) -> str:
    """Absolute error per age band, as box plots."""
    bands = band_of(frame[ref].to_numpy())
    labels = [f"{lo}-{hi} y" for lo, hi in AGE_BANDS]
    data = [np.abs(frame["pred"] - frame[ref]).to_numpy()[bands == b] for b in labels]
    fig, ax = plt.subplots(figsize=(4.6, 3.4))
    ax.boxplot([d if d.size else [np.nan] for d in data], showfliers=False)
    ax.set_xticks(
        range(1, len(labels) + 1), [f"{b}\n(n={d.size})" for b, d in zip(labels, data)], fontsize=8
    )
    ax.set(ylabel="absolute error (months)", title=title)
    return to_uri(fig)


def training_curves(histories: dict[str, pd.DataFrame]) -> str:
    """Training loss and validation MAE per epoch for every experiment."""
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    for name, h in histories.items():
        (line,) = ax.plot(h["epoch"], h["loss"], lw=1, label=f"{name} train loss")
        ax.plot(
            h["epoch"],
            h["val_mae"],
            lw=1.5,
            ls="--",
            color=line.get_color(),
            label=f"{name} val MAE",
        )
    ax.set(xlabel="epoch", ylabel="MAE (months)", title="training curves")
    ax.legend(fontsize=8)
    return to_uri(fig)


def qc_reasons(counts: dict[str, int], title: str) -> str:
    """Horizontal bar chart of rejection counts by reason."""
    fig, ax = plt.subplots(figsize=(4.6, 0.4 + 0.35 * max(len(counts), 1)))
    names = list(counts) or ["(none)"]
    ax.barh(names, [counts.get(n, 0) for n in names], color="#8c564b")
    ax.set(xlabel="images", title=title)
    return to_uri(fig)
