"""The health check, open to anyone (even with READ_ACCESS=users): the server is up and answers, and whether its
data folder and database take writes."""

from __future__ import annotations

from fastapi import APIRouter

from app.core.redact import redact_paths
from app.web.deps import StorageHealthDep

router = APIRouter(include_in_schema=False)


@router.get("/healthz")
def healthz(health: StorageHealthDep) -> dict[str, str]:
    """`{"status": "ok"}` while the server runs and can store; `{"status": "degraded", "problem": …}` (still 200:
    pages and the API read) while the data folder or the database refuses writes, with why and the fix (no server
    paths: anyone may ask)."""
    problem = health.problem()
    return {"status": "ok"} if problem is None else {"status": "degraded", "problem": redact_paths(problem)}
