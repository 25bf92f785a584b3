"""The JSON (and panel) shape of a neuron's connections: the units that feed it and those it feeds."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from dissect_core.evaluation.verdict import Verdict


class ConnectionLink(BaseModel):
    """One unit joined to the neuron, with the signed weight of the link and how it was found."""

    layer: str
    unit: int
    label: str | None = Field(description="the linked unit's label; None if it is not labelled")
    reliable: bool | None = Field(
        description="whether its label has the top grade (verdict explains); None when not evaluated"
    )
    verdict: Verdict | None = Field(
        None, description="its label's grade: explains, weak or no label; None when not graded"
    )
    weight: float = Field(description="signed: what the upstream unit adds to the downstream one per unit of it")
    kind: Literal["weight", "attribution"] = Field(
        description="'weight': read from the one module joining the layers; 'attribution': upstream map × gradient "
        "of the downstream unit, averaged over sampled probe images"
    )
    n_images: int | None = Field(None, description="the probe images an attribution averaged over (None for weights)")
    class_index: int | None = Field(None, description="for a class unit (the classifier's output): its class index")
    class_name: str | None = Field(None, description="for a class unit: its class name")
    url: str = Field(description="the linked unit's neuron page")


class NeuronConnections(BaseModel):
    """A neuron's strongest inputs and outputs (each connected layer pair's top 20 by |weight|), by |weight|."""

    run_id: int
    layer: str
    unit: int
    inputs: list[ConnectionLink]
    outputs: list[ConnectionLink]
    notes: list[str] = Field(default=[], description="how each connected layer pair's weights were computed")
