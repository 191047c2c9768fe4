"""``openlfr identify``: every face in an image, with its quality (no matching: there is no
watchlist outside an authorised deployment). :func:`register` adds it to the main app."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from openlfr.cli.support import JsonOption, print_json, user_errors


def analyzer() -> Any:
    """The configured face analyzer (--backend, --detector, --face-model)."""
    from openlfr.face.analyzer import default_analyzer

    return default_analyzer()


@user_errors
def identify(
    image: Annotated[Path, typer.Argument(help="Image to analyse.")],
    json_out: JsonOption = False,
) -> None:
    """Every face in an image: its box, detector score, quality and quality issues.

    No matching: there is no watchlist outside an authorised deployment
    (live cameras: 'openlfr run'; recordings: 'openlfr scan --deployment ID').
    """
    from openlfr.face.image import load_image

    faces = analyzer().analyze(load_image(image))
    out = [
        {
            "box": face.box.as_list(),
            "detector_score": round(face.detection.score, 4),
            "quality": round(face.quality.score, 4),
            "quality_issues": face.quality.reasons,
        }
        for face in faces
    ]
    if json_out:
        print_json({"image": str(image), "faces": out})
        return
    if not out:
        typer.echo(f"{image}: no face found")
    for k, f in enumerate(out, 1):
        issues = ", ".join(f["quality_issues"]) or "none"
        typer.echo(f"face {k}: box {f['box']} detector {f['detector_score']:.2f} quality {f['quality']:.2f} "
                   f"(issues: {issues})")


def register(app: typer.Typer) -> None:
    """Add ``openlfr identify`` to the main app."""
    app.command("identify")(identify)
