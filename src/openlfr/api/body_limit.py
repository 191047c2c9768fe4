"""Request bodies bounded before they are read: a declared length over the limit is refused at
once, and a streamed (chunked) body is cut off as soon as it passes the limit.

Only the upload routes take an image; every other body is small JSON or a small form.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send

#: the form fields that travel with an image (agreement, category, reason...)
FORM_OVERHEAD = 64 * 1024
#: any request that is not an image upload
SMALL_BODY = 1024 * 1024


class BodyLimit:
    """ASGI middleware: at most ``upload_limit + FORM_OVERHEAD`` bytes on ``upload_paths``,
    :data:`SMALL_BODY` elsewhere; 413 otherwise, with nothing spooled to disk. A path may name
    ``{id}`` for one segment of digits (``/console/requests/{id}/photo``)."""

    def __init__(self, app: Callable[..., Awaitable[None]], upload_limit: int, upload_paths: tuple[str, ...]) -> None:
        self.app = app
        self.upload_limit = upload_limit
        self.upload_paths = upload_paths
        self._patterns = [re.compile(re.escape(p).replace(re.escape("{id}"), "[0-9]+") + r"\Z") for p in upload_paths]

    def limit_for(self, path: str) -> int:
        upload = any(p.match(path) for p in self._patterns)
        return self.upload_limit + FORM_OVERHEAD if upload else SMALL_BODY

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _too_large(scope, limit)(scope, receive, send)
            return
        seen = 0

        async def bounded() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise HTTPException(413, f"request body too large: at most {limit} bytes")
            return message

        await self.app(scope, bounded, send)


def _too_large(scope: Scope, limit: int) -> Response:
    """413: a page for a console form (a person chose too large a file), JSON for the API."""
    from openlfr.api.errorpages import error_page, wants_html

    request = Request(scope)
    message = f"request body too large: at most {limit} bytes"
    if wants_html(request):
        return error_page(request, 413, message)
    return JSONResponse({"detail": message}, status_code=413)


__all__ = ["BodyLimit", "FORM_OVERHEAD", "SMALL_BODY"]
