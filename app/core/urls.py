"""The dashboard's URLs in one place, so pages, API answers and redirects agree on them."""

from __future__ import annotations

import re
from urllib.parse import quote, urlencode, urlsplit

API_PREFIX = "/api/v1"
LOGIN_PATH = "/login"
# Media names are content hashes; checking for plain characters is much cheaper than quoting hundreds per page.
_PLAIN_PATH = re.compile(r"[A-Za-z0-9._/-]+")


def _segment(value: str) -> str:
    # Layer names hold dots (`blocks.3`), which stay readable; anything else unsafe is escaped.
    return quote(value, safe="")


def run_url(run_id: int) -> str:
    """Return the path of a run's first page (its layer list lives on the home page and layer pages)."""
    return f"/runs/{run_id}"


def layer_url(run_id: int, layer: str, **params: str | int | None) -> str:
    """Return the path of a layer's grid, with the grid state (sort, q, page) as query parameters."""
    query = {key: value for key, value in params.items() if value not in (None, "")}
    suffix = f"?{urlencode(query)}" if query else ""
    return f"/runs/{run_id}/layers/{_segment(layer)}{suffix}"


def neuron_url(run_id: int, layer: str, unit: int, *, concept: str = "") -> str:
    """Return the permalink path of one neuron of one run; with `concept`, its page scores that concept."""
    suffix = f"?{urlencode({'concept': concept})}" if concept else ""
    return f"/runs/{run_id}/layers/{_segment(layer)}/neurons/{unit}{suffix}"


def model_neuron_url(model_name: str, layer: str, unit: int) -> str:
    """Return the path that redirects to a neuron of a model's latest run."""
    return f"/models/{_segment(model_name)}/layers/{_segment(layer)}/neurons/{unit}"


def layer_sweep_url(run_id: int, layer: str) -> str:
    """Return the path of a layer's sweep table: each swept unit's label–effect agreement."""
    return f"{layer_url(run_id, layer)}/sweep"


def layers_url(run_id: int) -> str:
    """Return the path the layer switcher submits to: it redirects to the chosen layer's grid."""
    return f"/runs/{run_id}/layers"


def run_details_url(run_id: int) -> str:
    """Return the path the run page's form posts a run's new name and notes to."""
    return f"/runs/{run_id}/details"


def delete_run_url(run_id: int) -> str:
    """Return the path of a run's delete confirmation page (its button posts there)."""
    return f"/runs/{run_id}/delete"


def typed_concepts_url(run_id: int) -> str:
    """Return the path of a run's kept typed concepts (the panel; a form posts a new one to it)."""
    return f"/runs/{run_id}/typed-concepts"


def relabel_url(run_id: int) -> str:
    """Return the path a form posts to queue a relabel of the run with its typed concepts."""
    return f"/runs/{run_id}/relabel"


def image_url(run_id: int, image_index: int) -> str:
    """Return the path of one probe image's page in a run: the image and the units it drives most."""
    return f"/runs/{run_id}/images/{image_index}"


def classes_url(run_id: int, q: str = "") -> str:
    """Return the path of a run's class list (searchable by class name with `q`)."""
    return f"/runs/{run_id}/classes" + (f"?{urlencode({'q': q})}" if q else "")


def class_url(run_id: int, class_index: int) -> str:
    """Return the path of one class's page: the units that drive it and the probe images predicted as it."""
    return f"/runs/{run_id}/classes/{class_index}"


def connections_url(run_id: int, layer: str, unit: int) -> str:
    """Return the path of a neuron's inputs and outputs (the neuron page loads the panel from it)."""
    return neuron_url(run_id, layer, unit) + "/connections"


def compare_url(run_id: int, other_run_id: int | None = None) -> str:
    """Return the path of the page comparing a run with another run of the same architecture."""
    return f"/runs/{run_id}/compare" + (f"?{urlencode({'other': other_run_id})}" if other_run_id is not None else "")


def search_url(run_id: int, q: str = "", **params: str | int | None) -> str:
    """Return the path of a run's search ("which units detect q?"), with its other state (sort, offset) as query
    parameters."""
    query = {key: value for key, value in {"q": q, **params}.items() if value not in (None, "")}
    return f"/runs/{run_id}/search" + (f"?{urlencode(query)}" if query else "")


def run_concepts_url(run_id: int, q: str, **params: str | int | None) -> str:
    """Return the path of a concept ranked over every layer of a run, with its paging (offset, limit, layer)."""
    query = {key: value for key, value in {"q": q, **params}.items() if value not in (None, "")}
    return f"/runs/{run_id}/concepts?{urlencode(query)}"


def export_url(run_id: int, export_format: str) -> str:
    """Return the API path of a run's export in a format (csv, json or parquet)."""
    return f"{API_PREFIX}/runs/{run_id}/export?{urlencode({'format': export_format})}"


def job_url(job_id: int) -> str:
    """Return the path of a job's progress page."""
    return f"/jobs/{job_id}"


def run_image_url(run_id: int, image_id: int) -> str:
    """Return the permalink path of an image uploaded to a run: its prediction and the units it drives."""
    return f"/runs/{run_id}/uploads/{image_id}"


def intervention_url(intervention_id: int) -> str:
    """Return the permalink path of an intervention's result."""
    return f"/interventions/{intervention_id}"


def neuron_interventions_url(run_id: int, layer: str, unit: int) -> str:
    """Return the path of a neuron's "Test this neuron" panel (its latest interventions; editors ask for more)."""
    return f"/runs/{run_id}/layers/{_segment(layer)}/neurons/{unit}/interventions"


def delete_probe_set_url(name: str) -> str:
    """Return the path the probe-sets page's form posts to delete an uploaded probe set."""
    return f"/probe-sets/{_segment(name)}/delete"


def delete_concept_set_url(name: str) -> str:
    """Return the path the concept-sets page's form posts to delete an uploaded concept set."""
    return f"/concept-sets/{_segment(name)}/delete"


def architecture_layers_url(architecture: str) -> str:
    """Return the API path of the layers an architecture offers (htmx gets the upload form's layer picker)."""
    return f"{API_PREFIX}/architectures/{_segment(architecture)}/layers"


def safe_local_path(target: str, default: str = "/") -> str:
    """Return `target` when it is a path on this site (no scheme, host or `//`), else `default`."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target and not urlsplit(target).netloc:
        return target
    return default


def login_url(next_path: str = "/") -> str:
    """Return the login page's URL, coming back to `next_path` (a path on this site) afterwards."""
    target = safe_local_path(next_path)
    return f"{LOGIN_PATH}?next={quote(target, safe='/')}" if target != "/" else LOGIN_PATH


def media_url(relative_path: str | None) -> str | None:
    """Return the URL of a file in the media dir, or None when there is none."""
    if not relative_path:
        return None
    relative_path = relative_path.lstrip("/")
    return "/media/" + (relative_path if _PLAIN_PATH.fullmatch(relative_path) else quote(relative_path, safe="/"))


#: The file names of a top image's cut media: the crop around its peak and its heatmap overlay.
TOP_MEDIA_FILES = {"crop": "crop.jpg", "heatmap": "heatmap.png"}


def top_media_url(run_id: int, layer: str, unit: int, rank: int, kind: str) -> str:
    """Return the stable URL of a top image's crop or heatmap (`kind`), cut on its first request."""
    return f"/media/runs/{run_id}/layers/{_segment(layer)}/neurons/{unit}/top/{rank}/{TOP_MEDIA_FILES[kind]}"


def api_url(path: str) -> str:
    """Return an API path: the page path under the API prefix."""
    return API_PREFIX + path
