"""Read models of the catalogue and accounts: users, probe sets, concept sets, uploadable layers."""

from __future__ import annotations

from pydantic import BaseModel, Field

from app.read.schemas.runs import UtcDatetime


class UserView(BaseModel):
    """Who a request is authenticated as."""

    name: str
    role: str


class ProbeSetView(BaseModel):
    """A probe set web users may choose by name, with a few of its images (never where it lies on the server)."""

    name: str
    kind: str = Field(description="builtin, folder (registered by the operator) or uploaded")
    n_images: int
    thumbnails: list[str] = Field(description="media URLs of a few of its images")
    created_at: UtcDatetime | None
    owner: str | None = Field(default=None, description="who uploaded it (its name is theirs); None: the server's")


class ConceptSetView(BaseModel):
    """A concept set web users may choose by name."""

    name: str
    kind: str = Field(description="builtin or uploaded")
    n_concepts: int | None = Field(description="unknown for a built-in until a run uses it")
    created_at: UtcDatetime | None
    owner: str | None = Field(default=None, description="who uploaded it (its name is theirs); None: the server's")


class LayerOption(BaseModel):
    """A layer of an architecture that can be dissected."""

    name: str
    type: str
    n_units: int | None = None
