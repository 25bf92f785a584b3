"""The routes' dependencies, declared once: what `create_app` put on app.state, as Annotated aliases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.auth.permissions import require_editor
from app.core.config import Settings
from app.jobs.uploads.architectures import ArchitectureCatalog
from app.persistence.models import User
from app.persistence.writable import StorageHealth
from app.read.artifacts.reader import ArtifactsReader
from app.read.caches import ReadCache
from app.read.classes.contributions import ClassViews
from app.read.concepts.preload import RunPreloader
from app.read.concepts.search import ConceptSearcher
from app.read.neurons.distributions import NeuronDistributions
from app.web.auth import current_user
from app.web.middleware.response_cache import ResponseCache

#: What an editor may do, named in the answer to anyone else.
EDITING = "upload checkpoints, relabel runs, keep typed concepts or cancel jobs"

# The getters are async: they only read app.state, so FastAPI calls them on the event loop, not in a thread.


async def get_settings(request: Request) -> Settings:
    """Return the app's settings."""
    return request.app.state.settings


async def get_engine(request: Request) -> Engine:
    """Return the app's database engine (for writes, which open their own transaction)."""
    return request.app.state.engine


async def get_session(request: Request) -> AsyncIterator[Session]:
    """Yield a read session from the app's session factory, closed once the answer is sent."""
    session: Session = request.app.state.sessions()
    try:
        yield session
    finally:
        # Only closing a session that began a transaction does I/O (it hands its connection back); that goes to a
        # worker thread, while answers served from the in-memory caches skip the thread pool altogether.
        if session.in_transaction():
            await run_in_threadpool(session.close)
        else:
            session.close()


async def get_sessions(request: Request) -> sessionmaker[Session]:
    """Return the app's session factory (for a streamed answer that reads after the request's session closed)."""
    return request.app.state.sessions


async def get_templates(request: Request) -> Jinja2Templates:
    """Return the app's page templates."""
    return request.app.state.templates


async def get_read_cache(request: Request) -> ReadCache:
    """Return the app's cache of stored runs, layers and layer indexes."""
    return request.app.state.read_cache


async def get_response_cache(request: Request) -> ResponseCache:
    """Return the app's kept bodies of immutable pages and JSON."""
    return request.app.state.response_cache


async def get_searcher(request: Request) -> ConceptSearcher:
    """Return the app's concept searcher (encoders and run artifacts, loaded once)."""
    return request.app.state.concept_searcher


async def get_distributions(request: Request) -> NeuronDistributions:
    """Return the app's reader of neurons' distribution evidence (standardised layer activations, cached)."""
    return request.app.state.neuron_distributions


async def get_artifacts_reader(request: Request) -> ArtifactsReader:
    """Return the app's one reader of stored runs' artifacts (each file read once)."""
    return request.app.state.artifacts_reader


async def get_class_views(request: Request) -> ClassViews:
    """Return the app's class views (each run's per-class tables, computed once)."""
    return request.app.state.class_views


async def get_preloader(request: Request) -> RunPreloader:
    """Return the app's concept-search preloader (loads a run's encoder and artifacts in the background)."""
    return request.app.state.preloader


async def get_catalog(request: Request) -> ArchitectureCatalog:
    """Return the architectures checkpoints can be uploaded for."""
    return request.app.state.catalog


async def get_storage_health(request: Request) -> StorageHealth:
    """Return the app's check of whether its data folder and database take writes (what /healthz reports)."""
    return request.app.state.storage_health


async def get_current_user(request: Request) -> User | None:
    """Return the user of the request's API token or session cookie, or None for an anonymous request."""
    return await current_user(request)


#: The OpenAPI security scheme of API tokens.
BEARER_SCHEME = "bearerToken"
#: Declares the API token in the OpenAPI schema. It never refuses: app.web.auth.Authenticate checks any token sent
#: (401 when unknown or revoked) before a route runs, and the routes decide who may do what.
bearer_token = HTTPBearer(
    auto_error=False,
    scheme_name=BEARER_SCHEME,
    description=(
        "An API token (`neuron-atlas tokens create NAME` prints one), sent as `Authorization: Bearer TOKEN`. "
        "Changes need an editor's; reading needs none unless NEURON_ATLAS_READ_ACCESS=users."
    ),
)
TokenDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_token)]


async def get_editor(request: Request, _token: TokenDep) -> User:
    """Return the requesting user if they may edit; else raise LoginRequired (anonymous) or Forbidden (viewer)."""
    return require_editor(await current_user(request), EDITING)


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
SessionDep = Annotated[Session, Depends(get_session)]
SessionsDep = Annotated[sessionmaker[Session], Depends(get_sessions)]
TemplatesDep = Annotated[Jinja2Templates, Depends(get_templates)]
ReadCacheDep = Annotated[ReadCache, Depends(get_read_cache)]
ResponseCacheDep = Annotated[ResponseCache, Depends(get_response_cache)]
SearcherDep = Annotated[ConceptSearcher, Depends(get_searcher)]
PreloaderDep = Annotated[RunPreloader, Depends(get_preloader)]
DistributionsDep = Annotated[NeuronDistributions, Depends(get_distributions)]
ArtifactsReaderDep = Annotated[ArtifactsReader, Depends(get_artifacts_reader)]
ClassViewsDep = Annotated[ClassViews, Depends(get_class_views)]
CatalogDep = Annotated[ArchitectureCatalog, Depends(get_catalog)]
CurrentUserDep = Annotated[User | None, Depends(get_current_user)]
StorageHealthDep = Annotated[StorageHealth, Depends(get_storage_health)]
EditorDep = Annotated[User, Depends(get_editor)]
