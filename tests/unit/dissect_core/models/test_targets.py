"""The target-model zoo: names, weights, layers in forward order, and checkpoints (state dicts, safetensors)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dissect_core.errors import DissectError
from dissect_core.models.state_dicts import read_state_dict
from dissect_core.models.targets import get_layer, list_layers, load_target


def test_layers_are_listed_in_forward_order_with_shapes():
    target = load_target("resnet18", weights="none")
    layers = list_layers(target.model)
    names = [layer.name for layer in layers]
    assert names.index("conv1") < names.index("layer1.0.conv1") < names.index("layer4") < names.index("fc")
    fc = next(layer for layer in layers if layer.name == "fc")
    assert fc.output_shape == (1000,) and fc.n_units == 1000
    assert next(layer for layer in layers if layer.name == "layer4").n_units == 512


def test_unknown_model_and_layer_suggest_names():
    with pytest.raises(DissectError, match="Did you mean resnet18"):
        load_target("resnet81", weights="none")
    model = load_target("resnet18", weights="none").model
    with pytest.raises(DissectError, match="did you mean layer4"):
        get_layer(model, "layer44")


@pytest.mark.slow
def test_checkpoint_round_trip_and_mismatch(tmp_path):
    model = load_target("resnet18", weights="none").model
    good = tmp_path / "good.pt"
    torch.save(model.state_dict(), good)
    loaded = load_target("resnet18", checkpoint=str(good))
    assert torch.equal(loaded.model.fc.weight, model.fc.weight)
    assert "checkpoint-sha256" in loaded.identity
    with pytest.raises(DissectError, match="does not fit resnet34"):
        load_target("resnet34", checkpoint=str(good))


def test_checkpoint_with_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": nn.Linear(2, 2)}, path)  # a whole module needs unpickling code: refused
    with pytest.raises(DissectError, match="weights_only"):
        read_state_dict(path)


def test_safetensors_checkpoint(tmp_path):
    from safetensors.torch import save_file

    model = load_target("resnet18", weights="none").model
    path = tmp_path / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    assert set(read_state_dict(path)) == set(model.state_dict())


def test_skeletons_hold_shapes_on_the_meta_device_and_unknown_names_suggest_others():
    from dissect_core.models.targets import build_skeleton

    skeleton = build_skeleton("timm:resnet18")
    assert all(tensor.is_meta for tensor in skeleton.state_dict().values())
    assert skeleton.state_dict()["fc.weight"].shape == (1000, 512)
    with pytest.raises(DissectError, match="Did you mean resnet18"):
        build_skeleton("resnet81")
    with pytest.raises(DissectError, match="timm has no model 'resnet81'"):
        build_skeleton("timm:resnet81")
