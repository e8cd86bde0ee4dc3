"""The FastAPI application: our API, the dataset browser, clip-retrieval's API, the web page, size caps, CORS."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from openpairs import __version__
from openpairs.index.build import INDEX_JSON
from openpairs.index.search import IndexNotFoundError
from openpairs.serve import api, browse_api, compat
from openpairs.serve.config import ApiError, ServeConfig
from openpairs.serve.limits import BodyLimitMiddleware
from openpairs.serve.service import Service

STATIC = Path(__file__).parent / "static"
LOG = logging.getLogger(__name__)
CONFIG_ENV = "OPENPAIRS_SERVE_CONFIG"


def create_app(config: ServeConfig, service: Service | None = None) -> FastAPI:
    """Build the app for one index directory (loads the index and the CLIP model once)."""
    service = service or Service(config)
    app = FastAPI(
        title="openpairs search",
        version=__version__,
        description="k-nearest-neighbour search over an openpairs dataset (clip-retrieval compatible).",
    )
    app.state.service = service
    app.include_router(api.router(service))
    app.include_router(browse_api.router(service.browser))
    app.include_router(compat.router(service))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/healthz", include_in_schema=False)
    def health() -> str:
        return "ok"

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()]
        return JSONResponse({"detail": "; ".join(parts)}, status_code=422)

    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(config.cors_origins),
        allow_methods=["GET", "POST"],
        allow_headers=["*"],
    )
    app.add_middleware(BodyLimitMiddleware, limit=config.max_body_bytes)
    return app


def app_from_environment() -> FastAPI:
    """uvicorn factory for worker processes: the ServeConfig arrives as JSON in OPENPAIRS_SERVE_CONFIG."""
    import faiss

    faiss.omp_set_num_threads(1)
    values: dict[str, Any] = json.loads(os.environ[CONFIG_ENV])
    fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return create_app(ServeConfig(**fields))


class ServeStartError(RuntimeError):
    """The server process or a worker failed while starting."""


# uvicorn's supervisor kills a worker that does not answer its health ping within this many seconds and
# starts another. Its default (5 s) is shorter than a worker's start on a busy machine (importing torch and
# loading the CLIP and the index hold the GIL for seconds), so each replacement was killed in turn and
# `--workers N` never served. A hung worker is still replaced, after this long.
WORKER_HEALTHCHECK_SECONDS = 120


def run(config: ServeConfig, host: str = "127.0.0.1", port: int = 1234, workers: int = 1) -> None:
    """Serve with uvicorn until interrupted (`workers` > 1: that many processes, each with the index).

    Port 0 picks a free port; the log line "serving ... on http://HOST:PORT" names the one bound.
    """
    import faiss
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    if not os.path.exists(os.path.join(config.index_dir, INDEX_JSON)):
        raise IndexNotFoundError(f"no {INDEX_JSON} in {config.index_dir}: run `openpairs index` first")
    options: dict[str, Any] = {"host": host, "port": port, "log_level": "warning", "access_log": False}
    if workers > 1:
        os.environ[CONFIG_ENV] = json.dumps(dataclasses.asdict(config))
        factory = "openpairs.serve.app:app_from_environment"
        server_config = uvicorn.Config(factory, factory=True, workers=workers,
                                       timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS, **options)  # fmt: skip
        socket = server_config.bind_socket()
        LOG.info("serving %s on %s with %d workers", config.index_dir, _address(socket), workers)
        supervisor = Multiprocess(server_config, sockets=[socket])
        supervisor.run()
        if any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes):
            raise ServeStartError("a worker could not load the app (its error is logged above)")
        return
    faiss.omp_set_num_threads(1)  # one query per request: parallelise across requests
    app = create_app(config)
    server_config = uvicorn.Config(app, **options)
    socket = server_config.bind_socket()
    LOG.info("serving %s on %s", app.state.service.name, _address(socket))
    server = uvicorn.Server(server_config)
    server.run(sockets=[socket])
    if not server.started:
        raise ServeStartError("the server did not start (its error is logged above)")


def _address(socket: Any) -> str:
    host, port = socket.getsockname()[:2]
    return f"http://{host}:{port}"
