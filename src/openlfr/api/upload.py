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

#: the fields of a share form besides the file
SHARE_FIELDS = ("agreement_id", "category", "reason", "subject_ref", "image_date", "under_18")

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
                "category": {"type": "string"},
                "reason": {"type": "string"},
                "subject_ref": {"type": "string"},
                "image_date": {"type": "string", "format": "date"},
                "under_18": {"type": "boolean", "default": False},
            },
        }}},
    }
}


async def read_share_form(request: Request, limit: int) -> tuple[dict[str, str], bytes]:
    """(text fields, image bytes) of a share form; 413/415/422 for a bad upload."""
    try:
        form = await request.form(max_files=1, max_fields=len(SHARE_FIELDS) + 2, max_part_size=64 * 1024)
    except HTTPException:
        raise
    except Exception as err:  # malformed multipart: Starlette raises its own MultiPartException
        raise HTTPException(422, f"invalid form: {err}") from None
    file = form.get("file")
    if not isinstance(file, UploadFile):
        raise HTTPException(422, "choose an image file (form field 'file')")
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise HTTPException(413, f"upload too large: at most {limit} bytes")
    if not data:
        raise HTTPException(422, "the uploaded file is empty")
    if sniff(data) is None:
        raise HTTPException(415, "only JPEG or PNG images are accepted")
    fields = {k: str(form.get(k, "")) for k in SHARE_FIELDS if not isinstance(form.get(k), UploadFile)}
    return fields, data
