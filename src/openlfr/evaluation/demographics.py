"""Demographic differentials: FNIR and FPIR per group at one threshold, with confidence.

Groups come from a CSV file of ``image,group`` rows supplied by the evaluator (openlfr
infers no demographic attribute from faces). The first column may name an image by path
relative to the folder (``Name/Name_0001.jpg``), by file name, or a whole person (the
sub-folder name). Rates carry 95% Wilson score intervals, and the differential is the ratio
between the worst and the best group, as in NIST's demographic reports.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from openlfr.errors import InputError

Z95 = 1.959964


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """95% Wilson score interval of a proportion ``k / n`` (``(nan, nan)`` when ``n == 0``)."""
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def read_groups(csv_file: Path) -> dict[str, str]:
    """Labels from a CSV of ``image,group`` rows (a header row is allowed)."""
    try:
        with open(csv_file, newline="") as fh:
            rows = [r for r in csv.reader(fh) if r and not r[0].startswith("#")]
    except OSError as exc:
        raise InputError(f"{csv_file}: cannot read group labels ({exc.strerror})") from exc
    if rows and [c.strip().lower() for c in rows[0][:2]] in (["image", "group"], ["person", "group"]):
        rows = rows[1:]
    out: dict[str, str] = {}
    for k, r in enumerate(rows, 1):
        if len(r) < 2 or not r[0].strip() or not r[1].strip():
            raise InputError(f"{csv_file}: row {k} is not 'image,group': {','.join(r)}")
        out[r[0].strip()] = r[1].strip()
    if not out:
        raise InputError(f"{csv_file}: no group labels")
    return out


def group_of(path: Path, groups: dict[str, str]) -> str | None:
    """The group of an image: by ``person/file``, by file name, then by person."""
    p = Path(path)
    for key in (f"{p.parent.name}/{p.name}", p.name, p.parent.name, str(p)):
        if key in groups:
            return groups[key]
    return None


@dataclass
class GroupRates:
    """Error rates of one group at the threshold."""

    group: str
    mated: int
    misses: int
    fnir: float
    fnir_ci95: tuple[float, float]
    non_mated: int
    false_alerts: int
    fpir: float
    fpir_ci95: tuple[float, float]


@dataclass
class Differentials:
    """Per-group rates and the worst/best ratios (``None`` where undefined)."""

    threshold: float
    groups: list[GroupRates]
    unlabelled_mated: int
    unlabelled_non_mated: int
    fnir_ratio: float | None
    fpir_ratio: float | None
    note: str

    def to_dict(self) -> dict:
        return asdict(self)


def _ratio(values: list[float]) -> float | None:
    v = [x for x in values if np.isfinite(x)]
    if len(v) < 2:
        return None
    lo, hi = min(v), max(v)
    return None if lo == 0 else float(hi / lo)


def differentials(
    threshold: float,
    mated_paths: list[Path],
    mated_hit_scores: np.ndarray,
    non_mated_paths: list[Path],
    non_mated_top_scores: np.ndarray,
    groups: dict[str, str],
) -> Differentials:
    """FNIR and FPIR per group at ``threshold``."""
    g_m = [group_of(p, groups) for p in mated_paths]
    g_n = [group_of(p, groups) for p in non_mated_paths]
    miss = np.asarray(mated_hit_scores) < threshold
    alert = np.asarray(non_mated_top_scores) >= threshold
    rows = []
    for name in sorted({g for g in g_m + g_n if g is not None}):
        m = np.array([g == name for g in g_m], bool)
        n = np.array([g == name for g in g_n], bool)
        km, nm = int(miss[m].sum()), int(m.sum())
        kn, nn = int(alert[n].sum()), int(n.sum())
        rows.append(
            GroupRates(
                group=name,
                mated=nm,
                misses=km,
                fnir=km / nm if nm else float("nan"),
                fnir_ci95=wilson(km, nm),
                non_mated=nn,
                false_alerts=kn,
                fpir=kn / nn if nn else float("nan"),
                fpir_ci95=wilson(kn, nn),
            )
        )
    fnir_ratio = _ratio([r.fnir for r in rows])
    fpir_ratio = _ratio([r.fpir for r in rows])
    note = ""
    if any(r.mated < 100 or r.non_mated < 1000 for r in rows):
        note = "some groups are small: read the confidence intervals before the ratios"
    return Differentials(
        threshold=threshold,
        groups=rows,
        unlabelled_mated=sum(g is None for g in g_m),
        unlabelled_non_mated=sum(g is None for g in g_n),
        fnir_ratio=fnir_ratio,
        fpir_ratio=fpir_ratio,
        note=note,
    )
