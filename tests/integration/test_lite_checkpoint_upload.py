"""An `efficientnet_lite_pytorch` checkpoint (the package's own key layout, 296 keys) is accepted for
efficientnet_lite0 through the key remapper (#26): by the upload form, by the API, and by the loader, which then
computes what the package's model computes."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
import timm
import torch
from efficientnet_lite_pytorch import EfficientNet
from fastapi.testclient import TestClient

from app.jobs.queue import jobs as queue
from app.jobs.uploads.architectures import ArchitectureCatalog
from app.web.main import create_app
from dissect_core.models.state_dicts import apply_state_dict
from tests.support.dashboard_seed import Dashboard, fake_encoder_loader

FIELDS = {"architecture": "efficientnet_lite0", "layers": ["blocks.1", "conv_head"], "probe": "cifar100"}


@pytest.fixture(scope="module")
def package_model() -> torch.nn.Module:
    """The package's own EfficientNet-Lite0, randomly initialised (seeded) and in eval mode."""
    torch.manual_seed(0)
    return EfficientNet.from_name("efficientnet-lite0").eval()


@pytest.fixture(scope="module")
def checkpoint(package_model: torch.nn.Module) -> bytes:
    """The package model's state dict saved as a .pt file."""
    buffer = io.BytesIO()
    torch.save(package_model.state_dict(), buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def lite_client(dashboard: Dashboard) -> Iterator[TestClient]:
    """The seeded dashboard's app offering efficientnet_lite0, as the admin."""
    app = create_app(
        dashboard.settings,
        encoder_loader=fake_encoder_loader(dashboard.encoder),
        catalog=ArchitectureCatalog(names=["efficientnet_lite0"]),
    )
    with TestClient(app, headers=dashboard.admin_headers) as client:
        yield client


def test_the_api_and_the_form_accept_the_package_layout(
    lite_client: TestClient, dashboard: Dashboard, checkpoint: bytes
) -> None:
    files = {"checkpoint": ("lite0-package.pt", checkpoint)}
    api = lite_client.post("/api/v1/uploads", data={**FIELDS, "concepts": "20k"}, files=files)
    assert api.status_code == 201, api.text
    queue.cancel(dashboard.engine, api.json()["job_id"])
    files = {"checkpoint": ("lite0-form.pt", checkpoint)}  # another file name: model names are unique
    form = lite_client.post("/upload", data={**FIELDS, "concepts": "20k"}, files=files, follow_redirects=False)
    assert form.status_code == 303 and form.headers["location"].startswith("/jobs/"), form.text
    queue.cancel(dashboard.engine, int(form.headers["location"].rsplit("/", 1)[1]))


def test_the_loader_renames_the_keys_and_computes_what_the_package_computes(package_model: torch.nn.Module) -> None:
    timm_model = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    apply_state_dict(timm_model, package_model.state_dict(), "efficientnet_lite0")
    image = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(timm_model(image), package_model(image), atol=1e-4)


def test_a_key_fitting_neither_layout_is_still_named(lite_client: TestClient, package_model: torch.nn.Module) -> None:
    state = dict(package_model.state_dict())
    state["_extra.weight"] = torch.zeros(1)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    files = {"checkpoint": ("odd.pt", buffer.getvalue())}
    refused = lite_client.post("/api/v1/uploads", data={**FIELDS, "concepts": "20k"}, files=files)
    assert refused.status_code == 422 and "Unexpected keys (1): _extra.weight" in refused.text, refused.text
