"""The FastAPI app mounted on the BentoML service for GET routes with path parameters.

BentoML APIs are POST endpoints with a JSON body; reads such as
``GET /profile/{id}`` are FastAPI class views declared on the service class
(``@routes.app.get`` on a method; BentoML injects the service instance as
``self``). This module only builds the app and maps errors to the same JSON shape
the BentoML endpoints use: ``{"error": "...", "detail": [...]}``.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.responses import JSONResponse

from serving.errors import ServingError

app = FastAPI(title="portrait", docs_url=None, redoc_url=None, openapi_url=None)


@app.exception_handler(ServingError)
async def _serving_error(_: Request, exc: ServingError) -> JSONResponse:
    return JSONResponse({"error": exc.message}, status_code=exc.status)


@app.exception_handler(RequestValidationError)
async def _bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
    detail = [{k: e[k] for k in ("type", "loc", "msg") if k in e} for e in exc.errors()]  # never echo input
    return JSONResponse({"error": f"{len(detail)} validation error(s)", "detail": detail}, status_code=400)
