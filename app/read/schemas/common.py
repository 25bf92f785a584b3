"""Helpers every read model shares."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Generic, TypeVar

from pydantic import BaseModel, Field

Item = TypeVar("Item")


def as_utc(moment: datetime) -> datetime:
    """Return the moment in UTC; a naive one (as SQLite returns every stored time) is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class ListPage(BaseModel, Generic[Item]):
    """The one envelope of every API list: a page of `items`, how many match in all, where the page starts, its size,
    and the URL of the next page (None on the last)."""

    items: list[Item]
    total: int = Field(description="items matching the request, on every page")
    offset: int = Field(default=0, description="how many matching items come before this page")
    limit: int = Field(description="the most items one page holds")
    next: str | None = Field(default=None, description="the URL of the next page; null on the last")
