"""Evaluation plots as PNG files (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from openlfr.evaluation import openset


def _pyplot():  # noqa: ANN202 - matplotlib.pyplot
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def det_plot(curves: dict[str, tuple[np.ndarray, np.ndarray]], out: Path,
             marks: tuple[float, ...] = (0.01, 0.001)) -> Path:
    """DET curves, FNIR against FPIR on log axes, one line per configuration.

    ``curves`` maps a label to ``(hit_scores, non_mated_top_scores)``.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=100)
    styles = ("-", "--", ":", "-.")
    for k, (label, (hits, nm)) in enumerate(curves.items()):
        fp, fn, _ = openset.det_curve(hits, nm)
        keep = fp > 0
        # alternate line styles so that curves lying on top of each other stay visible
        ax.step(fp[keep], fn[keep], where="post", label=label, ls=styles[k % len(styles)])
    for m in marks:
        ax.axvline(m, color="grey", lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_xlabel("FPIR (false alerts per non-listed face searched)")
    ax.set_ylabel("FNIR (listed faces missed)")
    ax.set_ylim(0, 1)
    ax.set_title("Open-set identification (DET)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return Path(out)


def score_histogram(hit_scores: np.ndarray, non_mated_top: np.ndarray, out: Path,
                    thresholds: dict[str, float] | None = None) -> Path:
    """Histograms of mated searches' mate scores and non-mated searches' best scores."""
    plt = _pyplot()
    hits = np.asarray(hit_scores, np.float64)
    nm = np.asarray(non_mated_top, np.float64)
    hits, nm = hits[np.isfinite(hits)], nm[np.isfinite(nm)]
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=100)
    both = np.concatenate([hits, nm]) if len(hits) + len(nm) else np.zeros(1)
    bins = np.linspace(both.min(), both.max() + 1e-9, 60)
    ax.hist(nm, bins=bins, alpha=0.6, density=True, label=f"non-mated searches, best score (n={len(nm)})")
    ax.hist(hits, bins=bins, alpha=0.6, density=True, label=f"mated searches, mate at rank 1 (n={len(hits)})")
    for name, t in (thresholds or {}).items():
        ax.axvline(t, color="black", lw=0.8, ls="--")
        ax.text(t, ax.get_ylim()[1] * 0.95, f" FPIR {name}", fontsize=7, rotation=90, va="top")
    ax.set_xlabel("score")
    ax.set_ylabel("density")
    ax.set_title("Search scores")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return Path(out)


def cmc_plot(curves: dict[str, list[float]], out: Path) -> Path:
    """Cumulative match characteristic: identification rate by rank."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=100)
    for label, c in curves.items():
        ax.plot(np.arange(1, len(c) + 1), c, marker=".", label=label)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("rank")
    ax.set_ylabel("mated searches with the mate at or above this rank")
    ax.set_title("CMC")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return Path(out)


def roc_plot(genuine: np.ndarray, impostor: np.ndarray, out: Path) -> Path:
    """Verification ROC (TAR against FAR, log FAR axis)."""
    plt = _pyplot()
    far, tar = openset.roc_curve(genuine, impostor)
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=100)
    keep = far > 0
    ax.step(far[keep], tar[keep], where="post")
    ax.set_xscale("log")
    ax.set_xlabel("FAR (different-person pairs accepted)")
    ax.set_ylabel("TAR (same-person pairs accepted)")
    ax.set_ylim(0, 1)
    ax.set_title("Verification ROC")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return Path(out)
