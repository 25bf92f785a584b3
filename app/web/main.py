"""The web app: `create_app(settings)` wires the database, caches, templates and routers together."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import Session

import dissect_core
from app.core.config import Settings
from app.jobs.architectures import ArchitectureCatalog
from app.persistence.db import create_db_engine, session_factory
from app.read.concept_search import ConceptSearcher, EncoderLoader
from app.read.read_cache import ReadCache
from app.web.cache_middleware import ServeCachedBodies
from app.web.errors import install_error_handlers
from app.web.routes.api import make_api_router
from app.web.routes.concepts import make_concepts_router
from app.web.routes.docs import make_docs_router
from app.web.routes.jobs import make_jobs_router
from app.web.routes.media import make_media_router
from app.web.routes.pages import make_pages_router
from app.web.routes.upload import make_upload_router
from app.web.templating import make_templates

STATIC_DIR = Path(__file__).resolve().parents[2] / "static"


def create_app(
    settings: Settings,
    *,
    encoder_loader: EncoderLoader | None = None,
    catalog: ArchitectureCatalog | None = None,
) -> FastAPI:
    """Return the dashboard app for a migrated database; tests may pass a fake encoder loader or catalog."""
    settings.ensure_dirs()
    engine = create_db_engine(settings.database_url)
    sessions = session_factory(engine)
    templates = make_templates()
    searcher = ConceptSearcher(encoder_loader=encoder_loader)
    cache = ReadCache()
    catalog = catalog or ArchitectureCatalog()

    def get_session() -> Iterator[Session]:
        with sessions() as session:
            yield session

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Everything imported so far (torch, templates, the ORM) lives as long as the process: moving it out of
        # the collector's reach keeps full collections short while requests are being served.
        for name in templates.env.list_templates(extensions=["html"]):
            templates.env.get_template(name)  # compile now, not inside the first request for each page
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
        engine.dispose()

    app = FastAPI(
        title="neuron-atlas",
        version=dissect_core.__version__,
        description="CLIP-Dissect neuron labels: browse, search, score new concepts, upload checkpoints.",
        docs_url=None,  # FastAPI's Swagger UI and ReDoc load scripts from a CDN; /docs is served locally
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.concept_searcher = searcher
    app.state.catalog = catalog
    app.state.read_cache = cache
    install_error_handlers(app, templates)
    app.add_middleware(ServeCachedBodies, cache=cache)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    common = {"get_session": get_session, "templates": templates}
    app.include_router(make_media_router(media_dir=settings.media_dir))
    app.include_router(make_upload_router(**common, engine=engine, settings=settings, catalog=catalog))
    app.include_router(
        make_api_router(**common, engine=engine, settings=settings, searcher=searcher, catalog=catalog, cache=cache)
    )
    # Concept routes end in fixed suffixes under `{layer:path}`, so they must be tried before the layer page.
    app.include_router(make_concepts_router(**common, engine=engine, settings=settings, searcher=searcher, cache=cache))
    app.include_router(make_jobs_router(**common, engine=engine))
    app.include_router(make_docs_router(templates=templates))
    app.include_router(make_pages_router(**common, cache=cache))
    return app
