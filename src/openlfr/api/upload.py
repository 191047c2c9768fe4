"""Reading an image upload: after authentication, within the size limit, format by content.

The routes that take an image parse their multipart body here, inside the handler, so the
caller's credential has been checked before a byte of the body is parsed (FastAPI parses
``File``/``Form`` parameters before dependencies run). Decoding is not done here: the image
gate (:func:`openlfr.governance.sharing.prepare_image`) runs in a worker thread.
"""

from __future__ import annotations

from fastapi import HTTPException, Request
from starlette.datastructures import UploadFile

from openlfr.face.image_gate import sniff
from openlfr.governance.grounds import WatchlistCategory

#: the fields of a share form besides the file
SHARE_FIELDS = ("agreement_id", "category", "reason", "subject_ref", "warrant_ref", "image_date", "under_18")

#: the multipart body of ``POST /api/images``, for the OpenAPI schema
SHARE_FORM_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object",
            "required": ["file", "agreement_id", "category", "reason", "subject_ref", "image_date"],
            "properties": {
                "file": {"type": "string", "format": "binary", "description": "JPEG or PNG with one face"},
                "agreement_id": {"type": "integer"},
                "category": {"type": "string", "enum": [c.value for c in WatchlistCategory],
                             "description": "the watchlist category, one the agreement allows"},
                "reason": {"type": "string"},
                "subject_ref": {"type": "string", "description": "a pseudonymous code such as MPS-2026-000123: "
                                "never a name or a date of birth (refused when it looks like one)"},
                "warrant_ref": {"type": "string", "description": "the warrant or court reference: required for "
                                "the categories that need one (" + ", ".join(
                                    c.value for c in WatchlistCategory if c.rule.needs_reference) + ")"},
                "image_date": {"type": "string", "format": "date"},
                "under_18": {"type": "boolean", "default": False},
            },
        }}},
    }
}

#: the fields of a signage form besides the photo
SIGNAGE_FIELDS = ("text", "checked_on", "deployment_id")

#: the multipart body of ``POST /api/cameras/{camera_id}/signage/photo``, for the OpenAPI schema
SIGNAGE_FORM_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object",
            "required": ["file", "text", "checked_on"],
            "properties": {
                "file": {"type": "string", "format": "binary", "description": "JPEG or PNG photo of the notice"},
                "text": {"type": "string", "description": "the notice's text: it must say that facial "
                         "recognition is in use"},
                "checked_on": {"type": "string", "format": "date"},
                "deployment_id": {"type": "integer", "description": "the deployment the check is for"},
            },
        }}},
    }
}


async def read_upload_form(request: Request, limit: int, names: tuple[str, ...],
                           what: str = "an image") -> tuple[dict[str, str], bytes]:
    """(text fields named ``names``, file bytes) of a multipart form; 413/415/422 for a bad upload."""
    try:
        form = await request.form(max_files=1, max_fields=len(names) + 2, max_part_size=64 * 1024)
    except HTTPException:
        raise
    except Exception as err:  # malformed multipart: Starlette raises its own MultiPartException
        raise HTTPException(422, f"invalid form: {err}") from None
    file = form.get("file")
    if not isinstance(file, UploadFile):
        raise HTTPException(422, f"choose {what} file (form field 'file')")
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise HTTPException(413, f"upload too large: at most {limit} bytes")
    if not data:
        raise HTTPException(422, "the uploaded file is empty")
    if sniff(data) is None:
        raise HTTPException(415, "only JPEG or PNG images are accepted")
    fields = {k: str(form.get(k, "")) for k in names if not isinstance(form.get(k), UploadFile)}
    return fields, data


async def read_share_form(request: Request, limit: int) -> tuple[dict[str, str], bytes]:
    """(text fields, image bytes) of a share form; 413/415/422 for a bad upload."""
    return await read_upload_form(request, limit, SHARE_FIELDS, "an image")


async def read_signage_form(request: Request, limit: int) -> tuple[dict[str, str], bytes]:
    """(text fields, photo bytes) of a signage form with a photo; 413/415/422 for a bad upload."""
    return await read_upload_form(request, limit, SIGNAGE_FIELDS, "a photo")
