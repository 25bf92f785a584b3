"""The health check, open to anyone (even with READ_ACCESS=users): the server is up and answers."""

# No `from __future__ import annotations` in route modules: FastAPI reads the Annotated aliases as they are.

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """`{"status": "ok"}` while the server runs."""
    return {"status": "ok"}
