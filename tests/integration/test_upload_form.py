"""The upload form: main stages pre-selected, every bad field reported at once, no terminal codes in messages."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.core.redact import strip_ansi
from dissect_core.models.main_stages import main_stages


def test_main_stages_of_a_resnet_shape() -> None:
    layers = [("conv1", "Conv2d"), ("bn1", "BatchNorm2d"), ("relu", "ReLU"), ("maxpool", "MaxPool2d")]
    layers += [(f"layer{i}", "Sequential") for i in range(1, 5)] + [("avgpool", "AdaptiveAvgPool2d"), ("fc", "Linear")]
    assert main_stages(layers) == ["conv1", "layer1", "layer2", "layer3", "layer4", "fc"]


def test_strip_ansi() -> None:
    assert strip_ansi("\x1b[31mno such\x1b[0m layer") == "no such layer"


def test_every_bad_field_at_once(client: TestClient, dashboard) -> None:  # type: ignore[no-untyped-def]
    form = {"architecture": "tinynet", "layers": "nope", "encoder": "no-such-encoder"}
    response = client.post("/api/v1/uploads", data=form, headers=dashboard.admin_headers)
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "No checkpoint file" in detail and "nope" in detail and "no-such-encoder" in detail
