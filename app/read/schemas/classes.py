"""The JSON (and page) shapes of a classifier's classes: the units that drive each, and single predictions."""

from __future__ import annotations

from pydantic import BaseModel, Field

from app.read.schemas.common import ListPage
from dissect_core.evaluation.verdict import Verdict


class ClassUnit(BaseModel):
    """A unit of the layer feeding the classifier, with what it contributes to a class."""

    layer: str
    unit: int
    label: str | None = Field(description="the unit's label; None if it is not labelled")
    reliable: bool | None = Field(
        description="whether its label has the top grade (verdict explains); None when not evaluated"
    )
    verdict: Verdict | None = Field(
        None, description="its label's grade: explains, weak or no label; None when not graded"
    )
    contribution: float = Field(
        description="W[c, j] × the mean of feature j (as the classifier receives it) over the images predicted as c"
    )
    share: float = Field(description="the contribution over the class's summed positive contributions")
    url: str = Field(description="the unit's neuron page")
    crop_urls: list[str] = Field(default=[], description="crops of the unit's top images")


class PredictedImage(BaseModel):
    """A probe image the model predicts as the class, with the class's probability on it."""

    image_index: int
    probability: float
    view_url: str | None
    url: str = Field(description="the image's page")


class ClassDetail(BaseModel):
    """One class: how many probe images the model predicts as it, and the units that drive it, by contribution."""

    run_id: int
    class_index: int
    class_name: str
    n_predicted: int = Field(description="probe images whose highest logit is this class")
    feeding_layer: str = Field(description="the dissected layer whose units are the classifier's inputs")
    units: list[ClassUnit]
    predicted_images: list[PredictedImage] = Field(default=[], description="images predicted as it, most sure first")


class ClassSummary(BaseModel):
    """One class in the run's class list: its name, its predictions and its top unit."""

    class_index: int
    class_name: str
    n_predicted: int
    top_unit: ClassUnit | None = Field(description="the unit contributing most; None when no image is predicted as it")
    url: str = Field(description="the class's page")


class ClassList(ListPage[ClassSummary]):
    """A run's classes whose name contains q (any case), by class index, all on one page (`items`)."""

    run_id: int
    q: str
    n_classes: int
    feeding_layer: str


class Prediction(BaseModel):
    """One of the model's most probable classes on an image."""

    class_index: int
    class_name: str
    probability: float
    url: str = Field(description="the class's page")


class PredictionUnit(BaseModel):
    """A unit behind an image's top class: W[c, j] × its feature j on this image."""

    layer: str
    unit: int
    label: str | None
    contribution: float
    url: str = Field(description="the unit's neuron page")
    crop_url: str | None = Field(None, description="a crop of the unit's top image")
