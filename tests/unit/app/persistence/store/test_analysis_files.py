"""The target's outputs are stored as safetensors, streamed a part at a time: the file holds the float16 logits
and classifier inputs, the float32 classifier and its names, as `safetensors.torch.save_file` stored them."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from app.persistence.store.analysis_files import save_outputs
from app.persistence.store.layout import ArtifactsLayout
from dissect_core.analysis.outputs import ModelOutputs


def test_outputs_read_back_as_the_tensors_and_names_save_file_stored(tmp_path: Path) -> None:
    rows = tmp_path / "rows.f32"
    torch.randn(30, 6).numpy().tofile(rows)
    logits = torch.from_file(str(rows), shared=False, size=30 * 6, dtype=torch.float32).view(30, 6)  # a Ray result's
    inputs, weight, bias = torch.randn(30, 4), torch.randn(6, 4).half(), torch.randn(6)
    outputs = ModelOutputs(logits, "fc", inputs, weight, bias, feeding_layer="avgpool")
    layout = ArtifactsLayout(tmp_path / "run")
    save_outputs(layout, outputs)
    expected = {
        "logits": logits.half(),
        "classifier_inputs": inputs.half(),
        "classifier_weight": weight.float(),
        "classifier_bias": bias,
    }
    names = {"classifier_layer": "fc", "feeding_layer": "avgpool"}
    save_file(expected, str(tmp_path / "reference.safetensors"), metadata=names)
    for path in (layout.outputs, tmp_path / "reference.safetensors"):
        with safe_open(str(path), framework="pt") as stored:
            assert stored.metadata() == names
            assert sorted(stored.keys()) == sorted(expected)
            for name, tensor in expected.items():
                loaded = stored.get_tensor(name)
                assert loaded.dtype == tensor.dtype and torch.equal(loaded, tensor)
    assert layout.outputs.stat().st_size == (tmp_path / "reference.safetensors").stat().st_size
