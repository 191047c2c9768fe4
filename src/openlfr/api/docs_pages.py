"""The API's documentation pages, Swagger UI at ``/docs`` and ReDoc at ``/redoc``, with their
scripts, styles and icon served by this server (from the ``fastapi-offline`` package, installed
with openlfr) rather than a CDN: they work on a network without internet, and the browser
fetches nothing from another host."""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

#: where the pages' assets are served
ASSETS = "/docs-assets"
ASSET_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"
#: the pages' own inline start-up script is allowed; nothing may be fetched from another host
#: (ReDoc's bundle would otherwise fetch its "powered by" logo from cdn.redoc.ly)
CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'")


def add_docs(app: FastAPI) -> None:
    """Serve ``/docs`` and ``/redoc`` from local assets (make ``app`` with ``docs_url=None,
    redoc_url=None``)."""
    app.mount(ASSETS, StaticFiles(directory=ASSET_DIR), name="docs-assets")

    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _local_only(get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} API",
            swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js", swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS}/favicon.png",
            # no validator badge: Swagger UI would send the schema to validator.swagger.io
            swagger_ui_parameters={"validatorUrl": None}))

    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _local_only(get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} API reference",
            redoc_js_url=f"{root}{ASSETS}/redoc.standalone.js", redoc_favicon_url=f"{root}{ASSETS}/favicon.png",
            with_google_fonts=False))

    # plain routes, as FastAPI adds its own docs pages: not API endpoints (no schema, no roles)
    app.add_route("/docs", swagger_ui, include_in_schema=False)
    app.add_route("/redoc", redoc, include_in_schema=False)


def _local_only(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = CSP
    return page
