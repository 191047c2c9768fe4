"""Does calibration hold out of sample? Calibrate on one half of the people, measure on the other.

People are split in two halves by a hash of their names (:func:`gains.stable_half`). For
each direction (A→B, B→A) the *test* half provides the watchlist (its people with 2+
images, one enrolment image each), its mated searches and its non-mated searches; the
*calibration* half provides everything the threshold is computed from:

* ``size`` method: impostor pair scores among the calibration half's faces, and the test
  watchlist's size only;
* ``watchlist`` method: the calibration half's single-image people searched, as a cohort,
  against the test watchlist's templates.

With cohort normalisation, the calibration half's single-image people are split again: one
part normalises scores (for calibration searches and test searches alike), the other is
the calibration cohort; the size method is not used there (its pair scores are raw cosine).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from openlfr.evaluation import calibration, gains, openset
from openlfr.evaluation.demographics import wilson
from openlfr.evaluation.facecache import FaceData

DEFAULT_TARGETS = (0.01, 0.001)


@dataclass
class CheckRow:
    """One calibrated threshold and what happened on the held-out half."""

    direction: str
    method: str
    target_fpir: float
    threshold: float
    extrapolated: bool
    watchlist_size: int
    observed_fpir: float
    observed_fpir_ci95: tuple[float, float]
    false_alerts: int
    non_mated: int
    ratio: float | None  # observed / target
    within_factor_2: bool
    predicted_fnir: float | None
    observed_fnir: float


def _second_half(name: str, salt: str) -> int:
    return gains.stable_half(name + "#cohort", salt)


def _scores(p: np.ndarray, g: np.ndarray, norm: np.ndarray | None, k: int) -> np.ndarray:
    raw = p @ g.T
    if norm is None:
        return raw
    return gains.as_norm(raw, p @ norm.T, g @ norm.T, k)


def check(
    folder: dict[str, list[Path]],
    data: FaceData,
    config: gains.Config = gains.Config(),
    targets: tuple[float, ...] = DEFAULT_TARGETS,
    splits: int = 1,
) -> list[CheckRow]:
    """Calibrate on one half of the people, measure on the other, both ways; with
    ``splits > 1``, repeat over that many different random halvings (salted hashes)."""
    exp = gains.Experiment(folder, data)
    rows: list[CheckRow] = []
    for s in range(splits):
        rows.extend(_check_split(exp, folder, config, targets, "" if s == 0 else f"split{s}:"))
    return rows


def _check_split(
    exp: gains.Experiment, folder: dict[str, list[Path]], config: gains.Config, targets: tuple[float, ...], salt: str
) -> list[CheckRow]:
    halves = [{n: v for n, v in folder.items() if gains.stable_half(n, salt) == h} for h in (0, 1)]
    rows: list[CheckRow] = []
    for cal_h, test_h in ((0, 1), (1, 0)):
        direction = f"{salt}calibrate on half {'AB'[cal_h]}, measure on half {'AB'[test_h]}"
        cal, test = halves[cal_h], halves[test_h]
        split = gains.split_folder(test)
        g_names, g_t = exp.gallery_templates(split, config)
        col = {n: i for i, n in enumerate(g_names)}

        def templates(paths: list[Path]) -> np.ndarray:
            t = exp._templates(paths, config.flip)
            return t[~np.isnan(t[:, 0])].astype(np.float32)

        singles = [(n, v[0]) for n, v in cal.items() if len(v) == 1]
        norm = None
        cohort = [p for _, p in singles]
        if config.cohort_norm:
            norm = templates([p for n, p in singles if _second_half(n, salt) == 0])
            cohort = [p for n, p in singles if _second_half(n, salt) == 1]

        # test searches (called only within this iteration: the loop's variables are the ones meant)
        def searches(probes: list[tuple[str, Path]]) -> openset.Searches:
            paths = [p for _, p in probes]
            t = np.nan_to_num(exp._templates(paths, config.flip))
            s = _scores(t, g_t, norm, config.cohort_top_k)  # noqa: B023
            mate = np.array([col.get(n, -1) for n, _ in probes], dtype=np.int64)  # noqa: B023
            return openset.search(s, mate, exp._usable(paths, config.quality_gate))

        mated, non_mated = searches(split.mated), searches(split.non_mated)
        hits = mated.hit_score

        # calibration data, all from the calibration half
        cohort_top = _scores(templates(cohort), g_t, norm, config.cohort_top_k).max(axis=1)
        cal_paths = [p for v in cal.values() for p in v]
        cal_names = [n for n, v in cal.items() for _ in v]
        cal_t = exp._templates(cal_paths, config.flip)
        mated_pairs = calibration.mated_pair_scores(cal_t, cal_names)
        impostor_pairs = None if config.cohort_norm else calibration.impostor_pair_scores(cal_t, cal_names)
        if config.cohort_norm and norm is not None:  # (norm is set exactly when cohort_norm is)
            # mated scores on the normalised scale: each calibration person's first image
            # enrolled, the others searched against that small gallery
            mated_pairs = _normalised_mated(exp, cal, config, norm)

        for rate in targets:
            cals = [calibration.calibrate_for_watchlist(cohort_top, len(g_names), rate, mated_pairs)]
            if impostor_pairs is not None:
                cals.append(calibration.calibrate_for_size(impostor_pairs, len(g_names), rate, mated_pairs))
            for c in cals:
                fa = int(np.sum(non_mated.top_score >= c.threshold))
                obs = fa / len(non_mated)
                ratio = obs / rate if rate else None
                rows.append(
                    CheckRow(
                        direction=direction,
                        method=c.method,
                        target_fpir=rate,
                        threshold=c.threshold,
                        extrapolated=c.extrapolated,
                        watchlist_size=len(g_names),
                        observed_fpir=obs,
                        observed_fpir_ci95=wilson(fa, len(non_mated)),
                        false_alerts=fa,
                        non_mated=len(non_mated),
                        ratio=ratio,
                        within_factor_2=bool(ratio is not None and 0.5 <= ratio <= 2.0),
                        predicted_fnir=c.predicted_fnir,
                        observed_fnir=openset.fnir_at(hits, c.threshold),
                    )
                )
    return rows


def _normalised_mated(exp: gains.Experiment, cal: dict[str, list[Path]], config: gains.Config,
                      norm: np.ndarray) -> np.ndarray:
    """Mate scores (normalised) of the calibration half's own watchlist experiment."""
    split = gains.split_folder(cal)
    g_names, g_t = exp.gallery_templates(split, config)
    col = {n: i for i, n in enumerate(g_names)}
    paths = [p for _, p in split.mated]
    t = np.nan_to_num(exp._templates(paths, config.flip))
    s = _scores(t, g_t, norm, config.cohort_top_k)
    mate = np.array([col.get(n, -1) for n, _ in split.mated])
    ok = mate >= 0
    return s[np.flatnonzero(ok), mate[ok]]


@dataclass
class PooledCheck:
    """All held-out measurements of one method at one target, pooled."""

    method: str
    target_fpir: float
    measurements: int
    false_alerts: int
    non_mated: int
    observed_fpir: float
    observed_fpir_ci95: tuple[float, float]
    ratio: float
    share_within_factor_2: float
    mean_predicted_fnir: float | None
    mean_observed_fnir: float


def pooled(rows: list[CheckRow]) -> list[PooledCheck]:
    """Pool the rows of each (method, target): the calibration's bias with a tight interval."""
    out = []
    for key in sorted({(r.method, r.target_fpir) for r in rows}, key=lambda k: (k[0], -k[1])):
        rs = [r for r in rows if (r.method, r.target_fpir) == key]
        fa, n = sum(r.false_alerts for r in rs), sum(r.non_mated for r in rs)
        pf = [r.predicted_fnir for r in rs if r.predicted_fnir is not None]
        out.append(
            PooledCheck(
                method=key[0],
                target_fpir=key[1],
                measurements=len(rs),
                false_alerts=fa,
                non_mated=n,
                observed_fpir=fa / n,
                observed_fpir_ci95=wilson(fa, n),
                ratio=fa / n / key[1],
                share_within_factor_2=float(np.mean([r.within_factor_2 for r in rs])),
                mean_predicted_fnir=float(np.mean(pf)) if pf else None,
                mean_observed_fnir=float(np.mean([r.observed_fnir for r in rs])),
            )
        )
    return out


def summary(rows: list[CheckRow]) -> list[dict]:
    """Rows as plain dictionaries (for JSON)."""
    return [asdict(r) for r in rows]
