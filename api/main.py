"""ASGI factory: ``uvicorn --factory api.main:create_app``."""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.errors import AppError, ErrorCode, error_response, install_error_handlers
from api.identity import demo_identity
from api.inference import InferenceClient
from api.middleware import EdgeMiddleware
from api.observability import Metrics, configure_logging
from api.routes import admin, agent, public, users
from api.services import build_services, inference_config, start_background, stop_services
from api.settings import Settings, get_settings

log = logging.getLogger("api.main")

UPLOAD_PATHS = ("/api/v1/admin/faqs/import",)
# The demo page's widget script tag carries this attribute (frontend/widget-public/index.html): where the API puts
# the demo customer's signed identity when it serves the page.
DEMO_IDENTITY_SLOT = "data-xiaoke-demo-identity"


def prepare_database(settings: Settings, services: Any) -> None:
    """Embedded mode: migrate + seed on start. With an external database run ``python -m api migrate``."""
    from api.bootstrap import bootstrap_admin_from_settings, migrate_and_seed

    if settings.database_url is None:
        migrate_and_seed(services.engine, services.session_factory, settings)
    bootstrap_admin_from_settings(services.session_factory, settings)


def create_app(
    settings: Settings | None = None, *, serving_transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    """Build the app. ``serving_transport`` lets tests route the inference client to an in-process fake."""
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        inference = InferenceClient(inference_config(settings), metrics=metrics, transport=serving_transport)
        services = await build_services(settings, metrics, inference=inference)
        try:
            await asyncio.to_thread(prepare_database, settings, services)
        except Exception:
            log.warning(
                "database not prepared at startup (down?); chat keeps working, writes are journaled",
                exc_info=True,
            )
        await start_background(services)
        app.state.services = services
        try:
            yield
        finally:
            app.state.services = None
            await stop_services(services)

    app = FastAPI(
        title="XiaoKe API / 小客智能客服",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/docs" if settings.env != "production" else None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    install_error_handlers(app)

    app.include_router(public.router)
    app.include_router(admin.router)
    app.include_router(agent.router)
    app.include_router(users.router)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    async def readyz(request: Request) -> Response:
        services = getattr(request.app.state, "services", None)
        if services is None:
            return error_response(
                ErrorCode.DEPENDENCY_UNAVAILABLE, getattr(request.state, "request_id", None)
            )
        session_ok, db_ok, serving_ok = await asyncio.gather(
            services.sessions.ping(), services.db_ready(), services.inference.ready()
        )
        try:
            pending = await services.journal.pending()
        except Exception:
            pending = -1
        body = {
            "status": "ready" if session_ok else "not_ready",
            "checks": {
                "session_store": session_ok,
                "database": db_ok,  # down → writes are journaled, chat continues
                "serving": serving_ok,  # down → degraded replies, chat continues
                "writer_healthy": services.writer.healthy,
                "writer_pending": pending,
            },
        }
        return JSONResponse(body, status_code=200 if session_ok else 503)

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    async def metrics_endpoint() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    mount_frontend(app, settings)

    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=False,
        allow_methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"],
        allow_headers=["Content-Type", "Authorization", "X-Session-Token", "X-Request-ID"],
        expose_headers=["X-Request-ID", "Retry-After"],
        max_age=600,
    )

    def limit_for(path: str) -> int:
        return settings.max_upload_bytes if path in UPLOAD_PATHS else settings.max_body_bytes

    app.add_middleware(
        EdgeMiddleware, metrics=metrics, max_body_bytes=settings.max_body_bytes, limit_for_path=limit_for
    )
    return app


def mount_frontend(app: FastAPI, settings: Settings) -> None:
    """Serve the built console at /admin (SPA fallback) and the widget + demo page at /, when built."""
    console: Path = settings.console_dist
    if (console / "index.html").is_file():
        root = console.resolve()

        @app.get("/admin", include_in_schema=False)
        @app.get("/admin/{path:path}", include_in_schema=False)
        async def console_spa(path: str = "") -> FileResponse:
            candidate = (root / path).resolve()
            if path and candidate.is_relative_to(root) and candidate.is_file():
                return FileResponse(candidate)
            return FileResponse(root / "index.html")

    widget: Path = settings.widget_dist
    if widget.is_dir():
        page = widget / "index.html"

        @app.get("/", include_in_schema=False)
        @app.get("/index.html", include_in_schema=False)
        async def demo_page() -> Response:
            try:
                text = await asyncio.to_thread(page.read_text, encoding="utf-8")
            except OSError as exc:  # not built (yet)
                raise AppError(ErrorCode.NOT_FOUND) from exc
            # no-store: the signature in it expires; a cached copy would chat anonymously a day later
            return HTMLResponse(with_demo_identity(text, settings), headers={"Cache-Control": "no-store"})

        app.mount("/", StaticFiles(directory=widget, html=True, check_dir=False), name="widget")


def with_demo_identity(page: str, settings: Settings) -> str:
    """The demo page with the demo customer's signed identity on its widget script tag (``data-user-id`` +
    ``data-user-signature``), so that the demo's order lookups work: only with the demo order table outside
    production (api.identity.demo_identity); otherwise the page as built, an anonymous visitor's."""
    identity = demo_identity(settings)
    attributes = ""
    if identity is not None:
        user_id, signature = (html.escape(v, quote=True) for v in identity)
        attributes = f'data-user-id="{user_id}" data-user-signature="{signature}"'
    return page.replace(DEMO_IDENTITY_SLOT, attributes, 1)
