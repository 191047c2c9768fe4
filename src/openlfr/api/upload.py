"""Checks on uploaded images before anything reaches the services (so nothing is stored)."""

from __future__ import annotations

import cv2
import numpy as np
from fastapi import HTTPException, Request
from starlette.datastructures import UploadFile

# magic numbers of the formats accepted for watchlist images
_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")


def check_length(request: Request, limit: int) -> None:
    """413 early when the declared body is over the limit."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise HTTPException(413, f"upload too large: at most {limit} bytes")


async def read_image(file: UploadFile, limit: int) -> bytes:
    """The bytes of a JPEG or PNG upload of at most ``limit`` bytes that decodes; 413/415/422 otherwise."""
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise HTTPException(413, f"upload too large: at most {limit} bytes")
    if not data:
        raise HTTPException(422, "the uploaded file is empty")
    if not data.startswith(_SIGNATURES):
        raise HTTPException(415, "only JPEG or PNG images are accepted")
    if cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) is None:
        raise HTTPException(422, "the image could not be decoded")
    return data
