"""The web app: `create_app(settings)` puts the database, caches and templates on app.state, wraps the app in its
protections (hosts, headers, sessions, logins, CSRF) and adds the routers."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware

import dissect_core
from app.auth.sessions import SESSION_LIFETIME, derived_key, secret_key
from app.core.cache_bounds import CacheBounds
from app.core.config import Settings
from app.jobs.uploads.architectures import ArchitectureCatalog
from app.persistence.db import create_db_engine, session_factory
from app.persistence.writable import StorageHealth
from app.read.artifacts.reader import ArtifactsReader
from app.read.caches import ReadCache
from app.read.classes.contributions import ClassViews
from app.read.concepts.preload import RunPreloader
from app.read.concepts.search import ConceptSearcher, EncoderLoader
from app.read.images.view import ImageViews
from app.read.neurons.distributions import NeuronDistributions
from app.web.auth import Authenticate, install_auth_handlers
from app.web.errors import AnswerServerErrors, install_error_handlers
from app.web.middleware.cached_answers import ServeCachedBodies
from app.web.middleware.head import AnswerHeadAsGet
from app.web.middleware.response_cache import ResponseCache
from app.web.middleware.security import CsrfProtection, PrivateCaching, SecureCookiesOnHttps, SecurityHeaders
from app.web.openapi_security import declare_tokens
from app.web.routes import (
    account,
    catalogue,
    classes,
    compare,
    concepts,
    distribution,
    docs,
    health,
    images,
    interventions,
    jobs,
    layers,
    media,
    neurons,
    push,
    run_images,
    runs,
    search,
    upload,
)
from app.web.views.templating import make_templates

STATIC_DIR = Path(__file__).resolve().parents[2] / "static"
SESSION_COOKIE = "neuron_atlas_session"
# Routes are tried in this order. Media first: a grid page loads hundreds of images, each matched in turn.
ROUTERS = (
    media.router,
    runs.router,
    search.router,
    compare.router,
    neurons.router,
    images.router,
    run_images.router,
    classes.router,
    concepts.router,
    distribution.router,
    layers.router,
    interventions.router,
    jobs.router,
    upload.router,
    push.router,
    catalogue.router,
    account.router,
    health.router,
    docs.router,
)


def create_app(
    settings: Settings,
    *,
    encoder_loader: EncoderLoader | None = None,
    catalog: ArchitectureCatalog | None = None,
) -> FastAPI:
    """Return the dashboard app for a migrated database; tests may pass a fake encoder loader or catalog."""
    settings.ensure_dirs()
    engine = create_db_engine(settings.database_url)
    templates = make_templates()
    bounds = CacheBounds.from_settings(settings)  # every cache's bound (the table in app.core.cache_bounds)
    response_cache = ResponseCache(max_bytes=bounds.response_bytes, max_bodies=bounds.response_bodies)
    # Concept search and evidence, the neuron page's panels and the image view read runs' artifacts through one
    # reader, so each file is read once and each layer's activations are held once.
    artifacts = ArtifactsReader(settings.data_dir, bounds)
    searcher = ConceptSearcher(artifacts, encoder_loader=encoder_loader, bounds=bounds)
    preloader = RunPreloader(session_factory(engine), searcher, enabled=settings.preload_runs > 0)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Everything imported so far (torch, templates, the ORM) lives as long as the process: moving it out of
        # the collector's reach keeps full collections short while requests are being served.
        for name in templates.env.list_templates(extensions=["html"]):
            templates.env.get_template(name)  # compile now, not inside the first request for each page
        gc.freeze()
        preloader.request_newest(settings.preload_runs)  # after the freeze: what it loads may be evicted later
        try:
            yield
        finally:
            preloader.close()
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
    # What the routes' dependencies (app.web.deps) hand out.
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = session_factory(engine)
    app.state.templates = templates
    app.state.concept_searcher = searcher
    app.state.preloader = preloader
    app.state.catalog = catalog or ArchitectureCatalog(max_architectures=bounds.architectures)
    app.state.read_cache = ReadCache(bounds)
    app.state.artifacts_reader = artifacts
    app.state.neuron_distributions = NeuronDistributions(artifacts, bounds=bounds)
    app.state.class_views = ClassViews(artifacts, bounds=bounds)
    app.state.image_views = ImageViews(artifacts, bounds=bounds, classes=app.state.class_views)
    app.state.response_cache = response_cache
    app.state.storage_health = StorageHealth(settings, engine)
    install_error_handlers(app, templates)
    install_auth_handlers(app, templates)
    _add_middleware(app, settings, engine, templates, response_cache)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for router in ROUTERS:
        app.include_router(router)
    declare_tokens(app)
    return app


def _add_middleware(
    app: FastAPI, settings: Settings, engine: Engine, templates: Jinja2Templates, response_cache: ResponseCache
) -> None:
    """Wrap the app in its middleware, innermost first."""
    # A request (a HEAD one as its GET) meets the security headers, the host check, https cookies, the session,
    # the login check, the CSRF check, then the cache of rendered bodies (so cached pages also need a login).
    app.add_middleware(ServeCachedBodies, cache=response_cache)
    app.add_middleware(CsrfProtection, templates=templates, session_cookie=SESSION_COOKIE)
    app.add_middleware(
        Authenticate, engine=engine, sessions=app.state.sessions, users_only=settings.read_access == "users"
    )
    app.add_middleware(
        SessionMiddleware,
        secret_key=derived_key(secret_key(settings), "session"),
        session_cookie=SESSION_COOKIE,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        same_site="lax",
    )
    app.add_middleware(SecureCookiesOnHttps)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(settings.trusted_hosts), www_redirect=False)
    app.add_middleware(AnswerServerErrors)  # inside the headers: a 500 gets them too
    app.add_middleware(SecurityHeaders)
    if settings.read_access == "users":
        app.add_middleware(PrivateCaching)  # what only users may read must stay out of shared caches
    app.add_middleware(AnswerHeadAsGet)  # everything inside sees the GET it stands for
    if settings.cors_origins:  # outermost: a preflight is answered before the login check, which it never passes
        # Pages elsewhere may read the API with a bearer token; never with the session cookie (no credentials).
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET"],
            allow_headers=["Authorization"],
            allow_credentials=False,
        )
