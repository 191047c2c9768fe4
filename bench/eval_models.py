#!/usr/bin/env python
"""Both face models on data that is not LFW, their similarity scales, and the smallest faces.

    python bench/eval_models.py 1n     [--sets orl,yale,misc] [--threshold sface=T ...]
    python bench/eval_models.py scale  --lfw DIR --pairs FILE
    python bench/eval_models.py small  --lfw DIR --threshold sface=T --threshold dlib-resnet=T [--people 100]
    python bench/eval_models.py street [--frames 26]
    python bench/eval_models.py gains  --lfw DIR

Every part runs each pipeline (face model + detector) in the same process, on the same images,
with the default analyzer (flip averaging on). Pipelines are named ``MODEL+DETECTOR``:

* ``sface+yunet`` — SFace on YuNet's own 5 points (ArcFace alignment);
* ``dlib-resnet+mmod`` — the dlib ResNet on MMOD boxes (dlib 5-point shape predictor);
* ``dlib-resnet+mmod-up1`` — the same, MMOD run on the image doubled once (faces below ~80 px);
* ``dlib-resnet+yunet`` — the dlib ResNet with the shape predictor inside YuNet's box;
* ``dlib-resnet+whole`` — no detector: the whole image is the face box (ORL's tight crops);
* ``sface+yunet-pad`` — YuNet on the image padded by half its size on each side (black).

SFace cannot take the whole image as its face box: it is aligned on the 5 points YuNet gives,
and there is no landmark model for it that works inside a given box.

**1n** — a 1:N experiment per data set in ``../shared/data`` (or ``OPENLFR_DATA``):
``orl/`` (s1..s40, 10 pgm images each), ``yale/`` (subjectNN.<condition>, GIFs) and ``misc/``.
For orl and yale: gallery = the first image (natural sort) of each person, mated searches = the
others; non-mated searches = leave one person out: each person is removed from the gallery in
turn and all of their images are searched as strangers. Reported: images without a face,
rank-1, FNIR at FPIR 1% and 10% (thresholds set on these few non-mated searches; FPIR 0.1% is
not measurable), FNIR and FPIR at a threshold given with ``--threshold MODEL=T`` (e.g. the
model's LFW FPIR-1% point) and ms per image (detection + alignment + two embeddings).
``misc/`` is tiny: Obama (``obama.jpg``) and Biden (``biden.jpg``) are enrolled; the other Obama
images (the same portrait at 240p-1080p and cropped, ``obama2.jpg``, the left face of
``two_people.jpg``), the right face of ``two_people.jpg`` (Biden) and the six faces of
``multiface.jpg`` (strangers) are scored against both.

**scale** — the similarity scale on LFW (faces from the cache ``openlfr evaluate lfw`` wrote
under the same ``OPENLFR_DATA_DIR``; computed again if absent): medians of same-person and
different-person scores, and the thresholds at FMR 1e-3, 1e-4 and 1e-5 over all cross-person
pairs of images (about 19 million), with the true-accept rate at each.

**small** — ~``--people`` LFW people with 2+ images (evenly spaced in sorted order): their first
image is downscaled, whole, so that the face is W px wide (W from YuNet's box at full size, one
measure for every pipeline), for each W in ``--widths``; reported per pipeline: % of faces found
(a detection whose centre lies in the scaled reference box) and % matched at rank 1 against a
gallery of the same people's second image at full size with score >= the model's threshold.

**gains** — the open-set gains table of ``openlfr evaluate openset`` (plain, flip, AS-norm) with
flip + AS-norm added, from that command's face cache under the same ``OPENLFR_DATA_DIR``.

**street** — face box widths (px, each detector's own box) that YuNet and MMOD find in
``--frames`` frames spread over ``video/street_1080p.mp4``.

Output: markdown tables on stdout; ``--json FILE`` also writes every figure.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from _common import data_dir, video_frames

from openlfr.evaluation import openset
from openlfr.evaluation.lfw import central
from openlfr.face.analyzer import FaceAnalyzer, build_stage
from openlfr.face.image import as_rgb, load_image
from openlfr.face.types import Box, Detection

DEFAULT_1N = "sface+yunet,dlib-resnet+mmod,dlib-resnet+mmod-up1"
WHOLE_1N = "sface+yunet-pad,dlib-resnet+whole"  # extra rows for ORL's tight crops
DEFAULT_SMALL = "sface+yunet,dlib-resnet+mmod,dlib-resnet+mmod-up1,dlib-resnet+yunet"
WIDTHS = (16, 20, 24, 32, 40, 48, 64, 80)


# ----------------------------------------------------------------------------- pipelines


@dataclass
class Pipeline:
    """A face model with a way of finding faces."""

    name: str
    model: str
    detector: str
    analyzer: FaceAnalyzer | None = None
    whole: bool = False  # the whole image is the face box
    pad: float = 0.0  # pad the image by this share of its size on each side first

    def faces(self, image: np.ndarray):  # type: ignore[no-untyped-def]
        """Every face found, in the coordinates of ``image``."""
        image = as_rgb(image)
        assert self.analyzer is not None
        if self.whole:
            h, w = image.shape[:2]
            return self.analyzer.analyze(image, [Detection(Box(0, 0, w - 1, h - 1), 1.0, "whole")])
        if self.pad:
            h, w = image.shape[:2]
            py, px = round(h * self.pad), round(w * self.pad)
            padded = cv2.copyMakeBorder(image, py, py, px, px, cv2.BORDER_CONSTANT, value=(0, 0, 0))
            faces = self.analyzer.analyze(padded)
            for f in faces:  # boxes back into the image's coordinates (for centre tests only)
                b = f.detection.box
                f.detection.box = Box(b.left - px, b.top - py, b.right - px, b.bottom - py)
            return faces
        return self.analyzer.analyze(image)

    def central_face(self, image: np.ndarray):  # type: ignore[no-untyped-def]
        faces = self.faces(image)
        if not faces:
            return None
        best = central([f.detection for f in faces], image.shape)
        return next(f for f in faces if f.detection is best)


def make_pipeline(spec: str) -> Pipeline:
    """``MODEL+DETECTOR`` -> a ready pipeline (models loaded once per process)."""
    from openlfr.face.mmod_detector import MMODDetector

    try:
        model, det = spec.split("+", 1)
    except ValueError:
        raise SystemExit(f"pipeline {spec!r}: expected MODEL+DETECTOR") from None
    if det == "whole":
        if model == "sface":
            raise SystemExit("sface+whole is not possible: SFace aligns on YuNet's 5 points, which need a detection")
        stage = build_stage(detector="mmod", model=model)  # the detector is never called
        return Pipeline(spec, model, det, FaceAnalyzer(stage), whole=True)
    if det == "yunet-pad":
        return Pipeline(spec, model, det, FaceAnalyzer(build_stage(detector="yunet", model=model)), pad=0.5)
    if det == "mmod-up1":
        stage = build_stage(detector="mmod", model=model)
        stage.detector = MMODDetector(backend=getattr(stage.detector, "backend", "cpu"), upsample=1)
        return Pipeline(spec, model, det, FaceAnalyzer(stage))
    return Pipeline(spec, model, det, FaceAnalyzer(build_stage(detector=det, model=model)))


def parse_thresholds(items: list[str]) -> dict[str, float]:
    out = {}
    for item in items or []:
        key, _, value = item.partition("=")
        try:
            out[key] = float(value)
        except ValueError:
            raise SystemExit(f"--threshold {item!r}: expected MODEL=NUMBER") from None
    return out


def natural(path: Path) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def pct(v: float | None, digits: int = 1) -> str:
    return "–" if v is None or not np.isfinite(v) else f"{v * 100:.{digits}f}%"


# ----------------------------------------------------------------------------- 1:N


def folder_people(root: Path, name: str) -> dict[str, list[Path]]:
    """orl: sNN/*.pgm; yale: subjectNN.<condition>."""
    if name == "orl":
        dirs = sorted((d for d in root.iterdir() if d.is_dir()), key=natural)
        return {d.name: sorted(d.glob("*.pgm"), key=natural) for d in dirs}
    out: dict[str, list[Path]] = {}
    for p in sorted(root.iterdir()):
        if p.is_file() and p.name.startswith("subject") and "." in p.name:
            out.setdefault(p.name.split(".")[0], []).append(p)
    return out


@dataclass
class Templates:
    paths: list[Path]
    person: list[str]
    templates: np.ndarray  # NaN rows: no face
    seconds: list[float] = field(default_factory=list)

    @property
    def found(self) -> np.ndarray:
        return ~np.isnan(self.templates[:, 0])


def templates_of(pipe: Pipeline, people: dict[str, list[Path]]) -> Templates:
    paths = [p for imgs in people.values() for p in imgs]
    person = [n for n, imgs in people.items() for _ in imgs]
    rows, secs = [], []
    for p in paths:
        image = load_image(p)
        t0 = time.perf_counter()
        face = pipe.central_face(image)
        secs.append(time.perf_counter() - t0)
        rows.append(face.template if face is not None else None)
    dim = next((len(r) for r in rows if r is not None), 128)
    t = np.full((len(paths), dim), np.nan, np.float32)
    for i, r in enumerate(rows):
        if r is not None:
            t[i] = r
    return Templates(paths, person, t, secs)


def one_to_n(ts: Templates, people: dict[str, list[Path]], fixed: float | None) -> dict:
    """Gallery: first image of each person; mated: the others; non-mated: leave one person out."""
    names = list(people)
    col = {n: k for k, n in enumerate(names)}
    row = {p: i for i, p in enumerate(ts.paths)}
    g_idx = [row[people[n][0]] for n in names]
    g = ts.templates[g_idx]
    g_ok = ~np.isnan(g[:, 0])
    scores = np.nan_to_num(ts.templates) @ np.nan_to_num(g).T
    scores[:, ~g_ok] = -np.inf  # a person whose gallery image had no face is not listed
    usable = ts.found

    mated_rows = [row[p] for n in names for p in people[n][1:]]
    mate = np.array([col[ts.person[i]] if g_ok[col[ts.person[i]]] else -1 for i in mated_rows], np.int64)
    mated = openset.search(scores[mated_rows], mate, usable[mated_rows])

    nm_rows = [row[p] for n in names for p in people[n]]
    nm_scores = scores[nm_rows].copy()
    for k, i in enumerate(nm_rows):
        nm_scores[k, col[ts.person[i]]] = -np.inf  # that person is removed from the gallery
    non_mated = openset.search(nm_scores, None, usable[nm_rows])

    res = openset.evaluate(mated, non_mated, fpirs=(0.01, 0.1))
    out = {
        "people": len(names),
        "images": len(ts.paths),
        "images_without_face": int((~ts.found).sum()),
        "gallery_without_face": int((~g_ok).sum()),
        "mated_searches": len(mated_rows),
        "non_mated_searches": len(nm_rows),
        "non_mated_with_face": int(np.isfinite(non_mated.top_score).sum()),
        "rank1": res.rank1,
        "fnir_at_fpir_1pct": res.fnir_at_fpir["0.01"],
        "fnir_at_fpir_10pct": res.fnir_at_fpir["0.1"],
        "threshold_at_fpir_1pct": res.thresholds["0.01"],
        "threshold_at_fpir_10pct": res.thresholds["0.1"],
        "ms_per_image": 1000 * float(np.mean(ts.seconds)),
        "median_mate_score": float(np.median(mated.mate_score[np.isfinite(mated.mate_score)]))
        if np.isfinite(mated.mate_score).any() else None,
        "median_non_mated_top": float(np.median(non_mated.top_score[np.isfinite(non_mated.top_score)]))
        if np.isfinite(non_mated.top_score).any() else None,
    }
    if fixed is not None:
        out["fixed_threshold"] = fixed
        out["fnir_at_fixed"] = openset.fnir_at(mated.hit_score, fixed)
        out["fpir_at_fixed"] = openset.fpir_at(non_mated.top_score, fixed)
        out["false_alerts_at_fixed"] = int(np.sum(non_mated.top_score >= fixed))
    return out


def misc_part(pipe: Pipeline, root: Path, threshold: float | None) -> dict:
    """Obama and Biden enrolled; every other face of misc/ scored against both."""
    m = root / "misc"

    def largest(path: str):  # type: ignore[no-untyped-def]
        image = load_image(m / path)
        return pipe.central_face(image)

    t0 = time.perf_counter()
    enrol = {"obama": largest("obama.jpg"), "biden": largest("biden.jpg")}
    probes: list[tuple[str, str, object]] = []
    for f in ("obama-240p.jpg", "obama-480p.jpg", "obama-720p.jpg", "obama-1080p.jpg", "obama_small.jpg", "obama2.jpg"):
        probes.append((f, "obama", largest(f)))
    two = sorted(pipe.faces(load_image(m / "two_people.jpg")), key=lambda f: f.detection.box.center[0])
    if len(two) == 2:
        probes += [("two_people.jpg (left)", "obama", two[0]), ("two_people.jpg (right)", "biden", two[1])]
    else:
        probes.append((f"two_people.jpg ({len(two)} faces found, expected 2)", "?", None))
    multi = pipe.faces(load_image(m / "multiface.jpg"))
    for k, f in enumerate(sorted(multi, key=lambda f: f.detection.box.center[0])):
        probes.append((f"multiface.jpg face {k + 1}", "stranger", f))
    seconds = time.perf_counter() - t0

    rows = []
    for label, who, face in probes:
        r = {"probe": label, "who": who, "found": face is not None}
        for name, e in enrol.items():
            r[name] = float(np.dot(face.template, e.template)) if face is not None and e is not None else None
        rows.append(r)
    mate = [r[r["who"]] for r in rows if r["who"] in enrol and r[r["who"]] is not None]
    non_mate = [r[n] for r in rows for n in enrol if r["found"] and r["who"] != n and r[n] is not None]
    out = {
        "enrolled": {k: v is not None for k, v in enrol.items()},
        "faces_in_multiface": len(multi),
        "faces_in_two_people": len(two),
        "rows": rows,
        "lowest_mate_score": min(mate) if mate else None,
        "highest_non_mate_score": max(non_mate) if non_mate else None,
        "seconds": seconds,
    }
    assert pipe.analyzer is not None
    out["at"] = {}
    for label, t in (("registry default", pipe.analyzer.stage.model.default_threshold), ("--threshold", threshold)):
        if t is not None:
            out["at"][label] = {"threshold": t, "mates_below": int(sum(s < t for s in mate)),
                                "non_mates_at_or_above": int(sum(s >= t for s in non_mate)),
                                "mates": len(mate), "non_mates": len(non_mate)}
    return out


def run_1n(args: argparse.Namespace) -> dict:
    root = data_dir()
    thresholds = parse_thresholds(args.threshold)
    sets = args.sets.split(",")
    specs = args.pipelines.split(",")
    extra = args.whole_pipelines.split(",") if args.whole_pipelines else []
    result: dict = {"sets": {}}
    pipes = {s: make_pipeline(s) for s in dict.fromkeys(specs + extra)}
    for name in sets:
        if name == "misc":
            result["sets"]["misc"] = {s: misc_part(pipes[s], root, thresholds.get(pipes[s].model)) for s in specs}
            continue
        people = folder_people(root / name, name)
        result["sets"][name] = {}
        for s in specs + (extra if name == "orl" else []):
            ts = templates_of(pipes[s], people)
            result["sets"][name][s] = one_to_n(ts, people, thresholds.get(pipes[s].model))
            print(f"  {name} {s}: done", file=sys.stderr)
    print_1n(result, thresholds)
    return result


def print_1n(result: dict, thresholds: dict[str, float]) -> None:
    for name, rows in result["sets"].items():
        if name == "misc":
            continue
        first = next(iter(rows.values()))
        print(f"\n### {name}: {first['people']} people, {first['images']} images; {first['mated_searches']} mated, "
              f"{first['non_mated_searches']} non-mated searches (leave one person out)\n")
        print("| pipeline | no face (of images) | gallery without face | rank-1 | FNIR @ FPIR 1% (thr) | "
              "FNIR @ FPIR 10% (thr) | at the LFW FPIR-1% threshold: FNIR / FPIR | ms/image |")
        print("|---|---|---|---|---|---|---|---|")
        for s, r in rows.items():
            fixed = (f"{pct(r['fnir_at_fixed'])} / {pct(r['fpir_at_fixed'])} ({r['false_alerts_at_fixed']} false "
                     f"alerts; thr {r['fixed_threshold']:.3f})") if "fixed_threshold" in r else "–"
            print(f"| {s} | {r['images_without_face']} | {r['gallery_without_face']} | {pct(r['rank1'])} | "
                  f"{pct(r['fnir_at_fpir_1pct'])} ({r['threshold_at_fpir_1pct']:.3f}) | "
                  f"{pct(r['fnir_at_fpir_10pct'])} ({r['threshold_at_fpir_10pct']:.3f}) | {fixed} | "
                  f"{r['ms_per_image']:.0f} |")
    misc = result["sets"].get("misc")
    if misc:
        print("\n### misc: scores against the enrolled obama.jpg and biden.jpg\n")
        specs = list(misc)
        print("| probe | who | " + " | ".join(f"{s} vs Obama | vs Biden" for s in specs) + " |")
        print("|---|---|" + "---|---|" * len(specs))
        labels = [r["probe"] for r in misc[specs[0]]["rows"]]
        for i, label in enumerate(labels):
            cells = []
            for s in specs:
                rows = misc[s]["rows"]
                r = rows[i] if i < len(rows) and rows[i]["probe"] == label else None
                for n in ("obama", "biden"):
                    cells.append("–" if r is None or r[n] is None else f"{r[n]:.3f}")
            print(f"| {label} | {misc[specs[0]]['rows'][i]['who']} | " + " | ".join(cells) + " |")
        for s, m in misc.items():
            line = (f"- {s}: faces found in multiface.jpg {m['faces_in_multiface']} (6 people), two_people.jpg "
                    f"{m['faces_in_two_people']}; lowest mate score {fmt(m['lowest_mate_score'])}, highest non-mate "
                    f"score {fmt(m['highest_non_mate_score'])}")
            for label, a in m["at"].items():
                line += (f"; at {a['threshold']:.3f} ({label}): {a['mates_below']} of {a['mates']} mate scores below, "
                         f"{a['non_mates_at_or_above']} of {a['non_mates']} non-mate scores at or above")
            print(line)


def fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:.3f}"


# ----------------------------------------------------------------------------- scale


def run_scale(args: argparse.Namespace) -> dict:
    """Similarity scale of each model on LFW (the evaluate-lfw face cache)."""
    from openlfr.config import get_settings
    from openlfr.evaluation import lfw as ev
    from openlfr.evaluation import metrics
    from openlfr.evaluation.effectiveness import pipeline_key
    from openlfr.evaluation.facecache import cache_file_for, face_data

    result: dict = {}
    lfw_root = Path(args.lfw)
    pairs = ev.read_pairs(Path(args.pairs), lfw_root)
    split = ev.split_1n(ev.people(lfw_root))
    # the image list and key of 'openlfr evaluate lfw', so that its cache is reused
    paths = sorted({p.a for p in pairs} | {p.b for p in pairs}
                   | {p for _, p in split.gallery + split.mated + split.non_mated})
    cache = get_settings().data_dir / "eval-cache"
    for spec in args.pipelines.split(","):
        pipe = make_pipeline(spec)
        assert pipe.analyzer is not None
        key = pipeline_key(pipe.analyzer, None)
        hit = cache_file_for(paths, cache, key).exists()
        print(f"  {spec}: face data {'from the cache' if hit else 'computed (no cache: slow)'}", file=sys.stderr)
        data = face_data(paths, pipe.analyzer, cache_dir=cache, key=key)
        names = np.array([p.parent.name for p in data.paths])
        per_flip = {}
        for flip in (True, False):
            t = data.templates(flip)
            ok = ~np.isnan(t[:, 0])
            tt, nn = t[ok].astype(np.float32), names[ok]
            ts = ev.TemplateSet(list(data.paths), t, np.zeros(len(t), np.float32))
            vs = ev.pair_scores(ts, pairs)
            same = np.array([p.same for p in pairs])
            # all pairs of images with a face, in blocks
            gen, imp = [], []
            for i0 in range(0, len(tt), 1024):
                s = tt[i0 : i0 + 1024] @ tt.T
                for k in range(s.shape[0]):
                    i = i0 + k
                    row, other = s[k, i + 1 :], nn[i + 1 :]
                    m = other == nn[i]
                    gen.append(row[m])
                    imp.append(row[~m])
            g, im = np.concatenate(gen), np.concatenate(imp)
            im_sorted = np.sort(im)[::-1]

            def thr(rate: float, im_sorted: np.ndarray = im_sorted) -> float:
                allowed = int(np.floor(rate * len(im_sorted)))
                return float(np.nextafter(im_sorted[allowed], np.inf))

            per_flip["flip" if flip else "plain"] = {
                "images_with_face": int(ok.sum()),
                "verification_pairs": {
                    "genuine_median": float(np.median(vs[same])),
                    "impostor_median": float(np.median(vs[~same])),
                    "impostor_p99": float(np.percentile(vs[~same][np.isfinite(vs[~same])], 99)),
                    "impostor_max": float(np.max(vs[~same])),
                    "threshold_at_far_0_1pct": metrics.threshold_at_rate(vs[~same], 0.001),
                    "impostor_pairs": int((~same).sum()),
                },
                "all_pairs": {
                    "genuine_pairs": len(g),
                    "impostor_pairs": len(im),
                    "genuine_median": float(np.median(g)),
                    "impostor_median": float(np.median(im)),
                    "impostor_p99": float(np.percentile(im, 99)),
                    "fmr": {
                        f"{r:g}": {"threshold": thr(r), "tar": float(np.mean(g >= thr(r)))} for r in (1e-3, 1e-4, 1e-5)
                    },
                },
            }
        result[spec] = {"model_id": pipe.analyzer.model_id, "registry_default_threshold":
                        pipe.analyzer.stage.model.default_threshold, **per_flip}
    print("\n### Similarity scale on LFW (flip-averaged templates, as the default pipeline makes them)\n")
    print("| pipeline | same-person median (all pairs; View 2 pairs) | different-person median (all; View 2) | "
          "99th pct different | thr @ FMR 1e-3 (TAR) | thr @ FMR 1e-4 (TAR) | thr @ FMR 1e-5 (TAR) | "
          "registry default |")
    print("|---|---|---|---|---|---|---|---|")
    for spec, r in result.items():
        for variant in ("flip", "plain"):
            a, v = r[variant]["all_pairs"], r[variant]["verification_pairs"]
            f = a["fmr"]
            print(f"| {spec} ({variant}) | {a['genuine_median']:.3f}; {v['genuine_median']:.3f} | "
                  f"{a['impostor_median']:.3f}; {v['impostor_median']:.3f} | {a['impostor_p99']:.3f} | "
                  + " | ".join(f"{f[k]['threshold']:.3f} ({pct(f[k]['tar'])})" for k in ("0.001", "0.0001", "1e-05"))
                  + f" | {r['registry_default_threshold']:.2f} |")
        a = r["flip"]["all_pairs"]
        print(f"|  | {a['genuine_pairs']:,} same-person, {a['impostor_pairs']:,} different-person pairs "
              f"({r['flip']['images_with_face']} images with a face) | | | | | | |")
    return result


# ----------------------------------------------------------------------------- small faces


def run_small(args: argparse.Namespace) -> dict:
    from openlfr.evaluation import lfw as ev
    from openlfr.face.yunet import YuNetDetector

    thresholds = parse_thresholds(args.threshold)
    folder = ev.people(Path(args.lfw))
    multi = [n for n, imgs in folder.items() if len(imgs) >= 2]
    pick = [multi[int(i)] for i in np.linspace(0, len(multi) - 1, min(args.people, len(multi)))]
    widths = [int(w) for w in args.widths.split(",")]
    yunet = YuNetDetector()
    # the reference face width: YuNet's box at full size, the same measure for every pipeline
    refs: dict[str, tuple[np.ndarray, Box]] = {}
    for n in pick:
        image = load_image(folder[n][0])
        dets = yunet.detect(image)
        if dets:
            refs[n] = (image, central(dets, image.shape).box)
    ref_w = np.array([b.width for _, b in refs.values()])
    result: dict = {"people": len(pick), "with_reference_face": len(refs),
                    "reference_width_median": float(np.median(ref_w)),
                    "reference_width_range": [int(ref_w.min()), int(ref_w.max())],
                    "widths": widths, "pipelines": {}}
    for spec in args.pipelines.split(","):
        pipe = make_pipeline(spec)
        t = thresholds.get(pipe.model)
        if t is None:
            assert pipe.analyzer is not None
            t = pipe.analyzer.stage.model.default_threshold
            print(f"  {spec}: no --threshold {pipe.model}=T, using the registry default {t}", file=sys.stderr)
        names, gal = [], []
        for n in refs:
            face = pipe.central_face(load_image(folder[n][1]))
            if face is not None:
                names.append(n)
                gal.append(face.template)
        g = np.stack(gal)
        rows = {}
        own_w = []
        for w in widths + ["full"]:
            found = matched = rank1 = 0
            for n, (image, box) in refs.items():
                s = 1.0 if w == "full" else min(1.0, w / box.width)
                small = image if s == 1.0 else cv2.resize(
                    image, (max(1, round(image.shape[1] * s)), max(1, round(image.shape[0] * s))),
                    interpolation=cv2.INTER_AREA)
                sb = Box(int(box.left * s), int(box.top * s), int(box.right * s), int(box.bottom * s))
                faces = pipe.faces(small)
                inside = [f for f in faces if sb.left <= f.detection.box.center[0] <= sb.right + 1
                          and sb.top <= f.detection.box.center[1] <= sb.bottom + 1]
                if not inside:
                    continue
                found += 1
                cx, cy = (sb.left + sb.right) / 2, (sb.top + sb.bottom) / 2
                f = min(inside,
                        key=lambda f: (f.detection.box.center[0] - cx) ** 2 + (f.detection.box.center[1] - cy) ** 2)
                if w == "full":
                    own_w.append(f.detection.box.width / box.width)
                sc = g @ f.template
                top = int(np.argmax(sc))
                if names[top] == n:
                    rank1 += 1
                    if sc[top] >= t:
                        matched += 1
            k = len(refs)
            rows[str(w)] = {"found": found / k, "rank1": rank1 / k, "matched": matched / k}
        result["pipelines"][spec] = {"threshold": t, "gallery": len(names), "rows": rows,
                                     "own_box_width_over_yunet": float(np.median(own_w)) if own_w else None}
        print(f"  {spec}: done", file=sys.stderr)
    print(f"\n### Smallest faces: {result['with_reference_face']} LFW people (first image downscaled; gallery: their "
          f"second image at full size); face width W = YuNet's box at full size (median "
          f"{result['reference_width_median']:.0f} px)\n")
    cols = [str(w) for w in widths] + ["full"]
    print("| pipeline (threshold) | " + " | ".join(f"W={c}" if c != "full" else "full size" for c in cols) + " |")
    print("|---|" + "---|" * len(cols))
    for spec, p in result["pipelines"].items():
        print(f"| {spec}: found ({p['threshold']:.3f}) | "
              + " | ".join(pct(p["rows"][c]["found"], 0) for c in cols) + " |")
        print(f"| {spec}: matched rank-1 >= thr | " + " | ".join(pct(p["rows"][c]["matched"], 0) for c in cols) + " |")
    for spec, p in result["pipelines"].items():
        print(f"- {spec}: gallery {p['gallery']}; its own box is {fmt(p['own_box_width_over_yunet'])}x YuNet's width "
              f"(median, full size)")
    return result


# ----------------------------------------------------------------------------- street clip


def run_street(args: argparse.Namespace) -> dict:
    from openlfr.face.detectors import make_detector
    from openlfr.face.mmod_detector import MMODDetector
    from openlfr.face.yunet import YuNetDetector

    frames = video_frames(data_dir() / "video" / "street_1080p.mp4", args.frames)
    dets = {"yunet": YuNetDetector(), "mmod": make_detector("mmod")}
    if args.mmod_up1:
        dets["mmod-up1"] = MMODDetector(backend=getattr(dets["mmod"], "backend", "cpu"), upsample=1)
    result: dict = {"frames": len(frames), "detectors": {}}
    for name, d in dets.items():
        widths, per_frame, secs = [], [], []
        for f in frames:
            t0 = time.perf_counter()
            found = d.detect(f)
            secs.append(time.perf_counter() - t0)
            per_frame.append(len(found))
            widths += [x.box.width for x in found]
        w = np.array(widths)
        result["detectors"][name] = {
            "faces": len(w), "per_frame": per_frame, "widths": sorted(int(x) for x in w),
            "min": int(w.min()) if len(w) else None, "median": float(np.median(w)) if len(w) else None,
            "max": int(w.max()) if len(w) else None, "ms_per_frame": 1000 * float(np.mean(secs)),
            "bins": {b: int(((w >= lo) & (w < hi)).sum()) for b, lo, hi in
                     (("<24", 0, 24), ("24-39", 24, 40), ("40-79", 40, 80), ("80+", 80, 1e9))},
        }
        print(f"  {name}: done", file=sys.stderr)
    print(f"\n### Street clip (1920x1080), {len(frames)} frames: face box widths (each detector's own box)\n")
    print("| detector | faces (per frame min-max) | width min / median / max px "
          "| <24 | 24-39 | 40-79 | 80+ | ms/frame |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in result["detectors"].items():
        b = r["bins"]
        median = "–" if r["median"] is None else f"{r['median']:.0f}"
        print(f"| {name} | {r['faces']} ({min(r['per_frame'])}-{max(r['per_frame'])}) | {r['min']} / "
              f"{median} / {r['max']} | {b['<24']} | {b['24-39']} | {b['40-79']} | {b['80+']} | "
              f"{r['ms_per_frame']:.0f} |")
    return result


# ----------------------------------------------------------------------------- open-set gains


def run_gains(args: argparse.Namespace) -> dict:
    """The open-set gains table of 'openlfr evaluate openset' with flip + AS-norm added, from its cache."""
    from openlfr.config import get_settings
    from openlfr.evaluation import facecache, gains
    from openlfr.evaluation.effectiveness import pipeline_key
    from openlfr.evaluation.lfw import people
    from openlfr.face.detectors import make_detector

    root = Path(args.lfw).resolve()
    folder = people(root)
    paths = sorted(p for imgs in folder.values() for p in imgs)
    cache = get_settings().data_dir / "eval-cache"
    configs = [gains.PLAIN, gains.Config(flip=True), gains.Config(cohort_norm=True),
               gains.Config(flip=True, cohort_norm=True)]
    result: dict = {}
    for spec in args.pipelines.split(","):
        pipe = make_pipeline(spec)
        assert pipe.analyzer is not None
        # the fallback 'openlfr evaluate openset' gives (the other of mmod and hog), so that its cache is reused
        other = "hog" if pipe.detector == "mmod" else "mmod"
        fallback = make_detector(other)
        key = pipeline_key(pipe.analyzer, fallback)
        hit = facecache.cache_file_for(paths, cache, key).exists()
        print(f"  {spec}: face data {'from the cache' if hit else 'computed (no cache: slow)'}", file=sys.stderr)
        data = facecache.face_data(paths, pipe.analyzer, cache, key, fallback)
        exp = gains.Experiment(folder, data)
        rows = []
        for cfg in configs:
            run = exp.run(cfg)
            r = openset.evaluate(run.mated, run.non_mated)
            rows.append({"config": cfg.label(), "rank1": r.rank1, "fnir_at_fpir_1pct": r.fnir_at_fpir["0.01"],
                         "fnir_at_fpir_0_1pct": r.fnir_at_fpir["0.001"], "threshold_at_fpir_1pct": r.thresholds["0.01"],
                         "threshold_at_fpir_0_1pct": r.thresholds["0.001"], "gallery": run.gallery_size,
                         "mated": r.mated, "non_mated": r.non_mated})
        result[spec] = {"images_without_face": int((~data.found).sum()), "rows": rows}
    print(f"\n### Open-set gains on {root} (gallery, mated and non-mated searches as 'openlfr evaluate openset')\n")
    print("| pipeline | configuration | rank-1 | FNIR @ FPIR 1% (thr) | FNIR @ FPIR 0.1% (thr) |")
    print("|---|---|---|---|---|")
    for spec, r in result.items():
        for row in r["rows"]:
            print(f"| {spec} | {row['config']} | {pct(row['rank1'])} | {pct(row['fnir_at_fpir_1pct'])} "
                  f"({row['threshold_at_fpir_1pct']:.3f}) | {pct(row['fnir_at_fpir_0_1pct'])} "
                  f"({row['threshold_at_fpir_0_1pct']:.3f}) |")
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="part", required=True)
    p1 = sub.add_parser("1n", help="1:N on orl/, yale/ and misc/ for each pipeline")
    p1.add_argument("--sets", default="orl,yale,misc", help="data sets (default: orl,yale,misc)")
    p1.add_argument("--pipelines", default=DEFAULT_1N, help=f"default: {DEFAULT_1N}")
    p1.add_argument("--whole-pipelines", default=WHOLE_1N,
                    help=f"extra rows on orl only (tight crops); '' for none (default: {WHOLE_1N})")
    p2 = sub.add_parser("scale", help="similarity scale on LFW: medians and thresholds at FMR 1e-3..1e-5")
    p2.add_argument("--pipelines", default="sface+yunet,dlib-resnet+mmod")
    p3 = sub.add_parser("small", help="smallest faces found and matched (downscaled LFW images)")
    p3.add_argument("--pipelines", default=DEFAULT_SMALL, help=f"default: {DEFAULT_SMALL}")
    p3.add_argument("--people", type=int, default=100)
    p3.add_argument("--widths", default=",".join(map(str, WIDTHS)))
    p5 = sub.add_parser("gains", help="open-set gains on LFW incl. flip + AS-norm (the evaluate-openset cache)")
    p5.add_argument("--pipelines", default="sface+yunet,dlib-resnet+mmod")
    p4 = sub.add_parser("street", help="face widths found by YuNet and MMOD in the street clip")
    p4.add_argument("--frames", type=int, default=26)
    p4.add_argument("--mmod-up1", action="store_true", help="also MMOD with one upsampling (slow)")
    for p in (p1, p2, p3, p4, p5):
        p.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    for p in (p2, p3, p5):
        p.add_argument("--lfw", type=Path, default=None, help="LFW folder (default: <data>/lfw)")
    p2.add_argument("--pairs", type=Path, default=None, help="pairs file (default: <data>/lfw_pairs.txt)")
    for p in (p1, p3):
        p.add_argument("--threshold", action="append", default=[], metavar="MODEL=T",
                       help="a model's threshold, e.g. its LFW FPIR-1%% point: sface=0.3 (repeatable)")
    args = ap.parse_args(argv)
    if getattr(args, "lfw", "x") is None:
        args.lfw = data_dir() / "lfw"
    if getattr(args, "pairs", "x") is None:
        args.pairs = data_dir() / "lfw_pairs.txt"
    run = {"1n": run_1n, "scale": run_scale, "small": run_small, "street": run_street, "gains": run_gains}[args.part]
    result = run(args)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
