"""`neuron-atlas dissect` and `layers` end to end on random small models, plus the pipeline's caches."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from PIL import Image
from torchvision import transforms

from app.cli.commands.dissect import config_from_args
from app.cli.main import build_parser, main
from dissect_core.config import DissectConfig
from dissect_core.encoders.open_clip_encoder import OpenClipEncoder
from dissect_core.errors import DissectError
from dissect_core.models.targets import load_target
from dissect_core.neuron_rows import NEURON_ROW_COLUMNS
from dissect_core.pipeline import run_dissection
from dissect_core.run_record import RunRecord
from tests.conftest import TINY_CLIP
from tests.support.memory import measure_in_child

pytestmark = pytest.mark.usefixtures("tiny_clip")


def dissect_args(probe, concepts, out, *extra):
    return [
        "dissect", "--model", "resnet18", "--weights", "none", "--layers", "layer3,fc", "--probe", str(probe),
        "--concepts", str(concepts), "--clip", TINY_CLIP, "--out", str(out), "--quiet", *extra,
    ]  # fmt: skip


def test_dissect_writes_csv_json_and_settings(probe_folder, concept_file, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NEURON_ATLAS_DATA_DIR", str(tmp_path / "data"))
    (probe_folder / "dots" / "broken.png").write_bytes(b"garbage")
    assert main(dissect_args(probe_folder, concept_file, tmp_path / "out", "--top-k", "4")) == 0
    rows = list(csv.DictReader((tmp_path / "out" / "results.csv").read_text().splitlines()))
    assert len(rows) == 256 + 1000
    assert tuple(rows[0]) == NEURON_ROW_COLUMNS and len(json.loads(rows[0]["runners_up"])) == 4
    provenance = {(row["run_id"], row["model"], row["weights"], row["probe_set"]) for row in rows}
    assert provenance == {("", "resnet18", "none@0", probe_folder.name)}  # a run not stored names no id
    concepts = {"cat", "dog", "striped", "car", "sky"}
    assert all(row["label"] in concepts for row in rows)
    result = json.loads((tmp_path / "out" / "results.json").read_text())
    assert result["n_images"] == 24 and len(result["skipped_images"]) == 1
    first = result["layers"][0]["neurons"][0]
    assert len(first["top_images"]) == 20 and len(first["runners_up"]) == 4  # the default n_top_images
    assert first["top_images"][0]["peak"] is not None
    record = RunRecord.from_json(json.loads((tmp_path / "out" / "settings.json").read_text()))
    assert record.config.similarity_params == {"top_k": 4} and record.facts.n_concepts == 5
    assert record.resolved.similarity_params["top_k"] == 4 and len(record.facts.skipped_images) == 1
    # every label is scored on images it was not chosen from
    assert record.config.n_folds == 5 and record.resolved.evaluation_skipped is None
    assert all(-1 <= float(row["explained_r"]) <= 1 and 0 <= float(row["p_value"]) <= 1 for row in rows)
    assert {row["reliable"] for row in rows} <= {"True", "False"}
    assert all(float(row["stability"]) in {0.0, 0.2, 0.4, 0.6, 0.8, 1.0} for row in rows)
    assert sum(bool(row["explanation"]) for row in rows) > len(rows) // 2
    assert all(row["ground_truth_r"] == "" for row in rows)  # the folders "dots", "stripes" are no concept
    assert {"explained_r", "explanation", "explanation_r", "reliable"} <= set(first)
    assert result["layers"][0]["evaluation"]["n_folds"] == 5
    assert "labelled 1256 neurons" in capsys.readouterr().out


def test_store_ends_with_the_runs_url_and_a_verdict_line_per_layer(
    probe_folder, concept_file, tmp_path, monkeypatch, capsys
):
    from app.cli.run_summary import verdict_summary_line
    from app.core.config import Settings
    from app.persistence.db import create_db_engine, session_factory
    from app.read.runs.overview import layer_overviews

    monkeypatch.setenv("NEURON_ATLAS_DATA_DIR", str(tmp_path / "data"))
    assert main(dissect_args(probe_folder, concept_file, tmp_path / "out", "--top-k", "4", "--store")) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-3].startswith("stored as run 1: /runs/1 ")
    assert lines[-2].startswith("layer3: 256 units · explains ") and lines[-1].startswith("fc: 1000 units · explains ")
    with session_factory(create_db_engine(Settings.from_env().database_url))() as session:
        overviews = layer_overviews(session, 1)
    assert lines[-2:] == [verdict_summary_line(layer) for layer in overviews]  # the run page's numbers
    shares = [int(part.split()[-1].rstrip("%")) for part in lines[-1].split(" · ")[1:4]]
    assert 99 <= sum(shares) <= 101 and " · mean r " in lines[-1]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--layers": "layer9"}, "no layer 'layer9'"),
        ({"--model": "resnet_18"}, "unknown model"),
        ({"--concepts": "/nope.txt"}, "one concept per line"),
        ({"--probe": "/no/such/folder"}, "does not exist"),
        ({"--top-k": "100"}, "larger than the probe set"),
        ({"--model": "efficientnet_lite2", "--clip": "conse:efficientnet_lite2+minilm"}, "built on efficientnet_lite2"),
        ({"--template": "a photo"}, "has no {}"),
        ({"--mean": "0.5,0.5"}, "--mean '0.5,0.5' is not three numbers R,G,B"),
        ({"--crop": "300"}, "crop 300 is larger than the resized shorter side 256"),
        ({"--weights": "none@x"}, "whole-number seed"),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_2(probe_folder, concept_file, tmp_path, capsys, change, message):
    args = dissect_args(probe_folder, concept_file, tmp_path / "out")
    for flag, value in change.items():
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "Traceback" not in err[0]


def test_checkpoint_that_does_not_fit(probe_folder, concept_file, tmp_path, capsys):
    from torchvision.models import resnet34

    checkpoint = tmp_path / "r34.pt"
    torch.save(resnet34().state_dict(), checkpoint)
    args = dissect_args(probe_folder, concept_file, tmp_path / "out", "--checkpoint", str(checkpoint))
    assert main(args) == 2
    assert "does not fit resnet18" in capsys.readouterr().err


def test_layers_command_prints_forward_order(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("NEURON_ATLAS_CACHE_DIR", str(tmp_path / "cache"))  # its layer tables kept there
    assert main(["layers", "--model", "resnet18"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:-1]]  # less the header and stages
    assert rows[0][0] == "conv1" and rows[-1][0] == "fc"
    assert ["layer4.1.conv2", "Conv2d", "512x7x7", "512"] in rows


def count_image_encodes(monkeypatch) -> list[int]:
    calls: list[int] = []
    original = OpenClipEncoder.encode_images

    def counting(self, pixels):
        calls.append(len(pixels))
        return original(self, pixels)

    monkeypatch.setattr(OpenClipEncoder, "encode_images", counting)
    return calls


def test_second_run_reuses_image_embeddings_and_activations(probe_folder, concept_file, tmp_path, monkeypatch):
    calls = count_image_encodes(monkeypatch)
    config = DissectConfig(
        model="resnet18", weights="none", layers=("layer4",), probe=str(probe_folder), concepts=str(concept_file),
        encoder=TINY_CLIP,
    )  # fmt: skip
    torch.manual_seed(0)
    first = run_dissection(config, cache_dir=tmp_path / "cache")
    assert sum(calls) == 24
    torch.manual_seed(1)  # a different random init must not matter: activations come from the cache
    second = run_dissection(config, cache_dir=tmp_path / "cache")
    assert sum(calls) == 24
    assert [n.label for n in first.layers[0].neurons] == [n.label for n in second.layers[0].neurons]


def test_changed_checkpoint_or_preprocessing_never_reuses_activations(probe_folder, concept_file, tmp_path):
    from torchvision.models import resnet18

    checkpoint = tmp_path / "weights.pt"
    torch.manual_seed(0)
    torch.save(resnet18().state_dict(), checkpoint)
    config = DissectConfig(
        model="resnet18", checkpoint=str(checkpoint), layers=("fc",), probe=str(probe_folder),
        concepts=str(concept_file), encoder=TINY_CLIP,
    )  # fmt: skip
    first = run_dissection(config, cache_dir=tmp_path / "cache").layers[0].activations
    torch.manual_seed(1)
    torch.save(resnet18().state_dict(), checkpoint)  # same file name, new weights
    second = run_dissection(config, cache_dir=tmp_path / "cache").layers[0].activations
    assert not torch.allclose(first, second)
    pooled = run_dissection(
        DissectConfig(**{**config.__dict__, "pool": "max", "layers": ("layer4",)}), cache_dir=tmp_path / "cache"
    )
    assert pooled.record.config.pool == "max"


def test_cancellation_stops_the_run(probe_folder, concept_file):
    from dissect_core.pipeline import DissectionCancelled

    config = DissectConfig(
        model="resnet18", weights="none", layers=("fc",), probe=str(probe_folder), concepts=str(concept_file),
        encoder=TINY_CLIP,
    )  # fmt: skip
    with pytest.raises(DissectionCancelled):
        run_dissection(config, should_stop=lambda: True)


def test_empty_probe_folder(tmp_path, concept_file):
    (tmp_path / "empty").mkdir()
    config = DissectConfig(
        model="resnet18", weights="none", layers=("fc",), probe=str(tmp_path / "empty"), concepts=str(concept_file),
        encoder=TINY_CLIP,
    )  # fmt: skip
    with pytest.raises(DissectError, match="holds no images"):
        run_dissection(config)


#: The probe images are 48 x 40, so a resize to 24 has the interpolation at work.
PREPROCESSING_FLAGS = ("--resize", "24", "--crop", "20", "--interpolation", "nearest", "--mean", "0.5,0.5,0.5")


def test_preprocessing_flags_reach_the_targets_transform(probe_folder, concept_file, tmp_path):
    args = build_parser().parse_args(
        dissect_args(probe_folder, concept_file, tmp_path / "out", *PREPROCESSING_FLAGS, "--std", "0.2,0.3,0.4")
    )
    config = config_from_args(args)
    overrides = {"resize": 24, "crop": 20, "interpolation": "nearest", "mean": (0.5,) * 3, "std": (0.2, 0.3, 0.4)}
    assert config.preprocessing == overrides
    target = load_target(config.model, config.weights, preprocessing=config.preprocessing)
    with Image.open(sorted(probe_folder.rglob("*.png"))[0]) as opened:
        image = opened.convert("RGB")
    expected = transforms.Compose(
        [
            transforms.Resize(24, interpolation=transforms.InterpolationMode.NEAREST),
            transforms.CenterCrop(20),
            transforms.ToTensor(),
            transforms.Normalize((0.5,) * 3, (0.2, 0.3, 0.4)),
        ]
    )(image)
    assert torch.equal(target.preprocessing.transform()(image), expected)


def test_settings_record_the_preprocessing_and_its_view(probe_folder, concept_file, tmp_path):
    args = dissect_args(probe_folder, concept_file, tmp_path / "out", *PREPROCESSING_FLAGS)
    assert main(args) == 0
    settings = json.loads((tmp_path / "out" / "settings.json").read_text())
    assert settings["resolved"]["preprocessing"] == {
        "resize": 24, "crop": 20, "interpolation": "nearest", "mean": [0.5, 0.5, 0.5],
        "std": [0.229, 0.224, 0.225], "antialias": True,
    }  # fmt: skip
    # the config keeps only the overrides asked for: what the run resolved never becomes a request
    assert settings["preprocessing"] == {"resize": 24, "crop": 20, "interpolation": "nearest", "mean": [0.5] * 3}
    assert settings["resolved"]["view"] == {"resize": 24, "crop": 20}
    record = RunRecord.from_json(settings)
    assert record.config.weights == "none" and record.identities.target == "torchvision:resnet18:random-seed0"
    assert record.facts.weights == "none@0" and record.config.device is None


def test_changed_interpolation_never_reuses_activations(probe_folder, concept_file, tmp_path):
    config = DissectConfig(
        model="resnet18", weights="none", layers=("fc",), probe=str(probe_folder), concepts=str(concept_file),
        encoder=TINY_CLIP, preprocessing={"resize": 24, "crop": 24, "interpolation": "bilinear"},
    )  # fmt: skip
    bilinear = run_dissection(config, cache_dir=tmp_path / "cache").layers[0].activations
    nearest_config = DissectConfig(
        **{**config.__dict__, "preprocessing": {**config.preprocessing, "interpolation": "nearest"}}
    )
    nearest = run_dissection(nearest_config, cache_dir=tmp_path / "cache").layers[0].activations
    assert not torch.allclose(bilinear, nearest)
    again = run_dissection(config, cache_dir=tmp_path / "cache").layers[0].activations
    assert torch.equal(bilinear, again)


def test_layers_command_builds_no_weights_yet_lists_what_a_loaded_model_has(capsys, monkeypatch, tmp_path):
    from dissect_core.models import layer_tables, targets

    monkeypatch.setenv("NEURON_ATLAS_CACHE_DIR", str(tmp_path / "cache"))  # a cold listing: traced, not read back
    monkeypatch.setattr(layer_tables, "SHIPPED_DIR", tmp_path / "shipped")  # nor read from the package's tables

    for model in ("resnet18", "efficientnet_lite0"):
        target = targets.load_target(model, "none")
        loaded = [
            [layer.name, layer.type_name, "x".join(map(str, layer.output_shape)) if layer.output_shape else "-"]
            for layer in targets.list_layers(target.model, target.preprocessing.crop)
        ]
        with monkeypatch.context() as patch:
            patch.setattr(targets, "load_target", lambda *_args, **_kwargs: pytest.fail("built weights"))
            assert main(["layers", "--model", model]) == 0
        listed = [line.split()[:3] for line in capsys.readouterr().out.splitlines()[1:-1]]
        assert listed == loaded, model


def test_layers_of_a_giant_architecture_take_no_memory(tmp_path, monkeypatch):
    """vit_h_14's 632 million parameters would take 2.5 GB with weights; listed on the meta device, next to none."""
    monkeypatch.setenv("NEURON_ATLAS_CACHE_DIR", str(tmp_path / "cache"))  # the child traces it: no kept table
    measured = measure_in_child(  # nor a shipped one: the package's tables are looked for in an empty folder
        "from app.cli.main import main\nimport torchvision.models\nfrom pathlib import Path\n"
        f"from dissect_core.models import layer_tables\nlayer_tables.SHIPPED_DIR = Path({str(tmp_path / 'shipped')!r})",
        "assert main(['layers', '--model', 'vit_h_14']) == 0",
    )
    assert measured.error is None, measured.error
    assert measured.growth_bytes < 300 * 2**20, measured
