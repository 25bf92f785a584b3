"""Class names pinned from the weights' own metadata: torchvision's enum meta, timm's and EfficientNet-Lite's
ImageNet label files, nothing downloaded; a checkpoint keeps them when its head is as large; given names win and
are checked against the head (#26)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torchvision.models import ResNet18_Weights, resnet18

from dissect_core.config import DissectConfig
from dissect_core.errors import DissectError
from dissect_core.models.class_names import (
    MAX_CLASS_NAME_CHARS,
    check_class_names,
    model_output_count,
    parse_class_names,
    read_class_names,
    run_class_names,
    torchvision_categories,
    weights_class_names,
)
from dissect_core.models.targets import build_skeleton


@pytest.fixture(autouse=True)
def _no_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("class names must come from metadata, not a download")

    monkeypatch.setattr("torch.hub.load_state_dict_from_url", refuse)
    monkeypatch.setattr("torch.hub.download_url_to_file", refuse)


def test_torchvision_class_names_come_from_the_weights_enum_meta() -> None:
    expected = ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
    assert weights_class_names("resnet18", "IMAGENET1K_V1") == expected
    assert weights_class_names("resnet18", "DEFAULT") == expected
    assert torchvision_categories(ResNet18_Weights.IMAGENET1K_V1)[:2] == ["tench", "goldfish"]


@pytest.mark.parametrize("weights", ["none", "none@3", "random", None])
def test_random_torchvision_weights_have_no_class_names(weights: str | None) -> None:
    assert weights_class_names("resnet18", weights) is None


def test_a_checkpoint_or_torchscript_file_has_no_class_names() -> None:
    assert weights_class_names("resnet18", "DEFAULT", checkpoint="finetuned.pt") is None
    assert weights_class_names("model.ts", "DEFAULT") is None


def test_unknown_weights_have_no_class_names() -> None:
    assert weights_class_names("resnet18", "NO_SUCH_WEIGHTS") is None


def test_efficientnet_lite_weights_have_the_imagenet_descriptions() -> None:
    names = weights_class_names("efficientnet_lite0", None)
    assert names is not None and len(names) == 1000
    assert names[0].startswith("tench, ")
    assert weights_class_names("efficientnet_lite0", "none") is None


def test_a_checkpoint_with_the_architectures_head_keeps_its_trained_names() -> None:
    expected = ResNet18_Weights.DEFAULT.meta["categories"]
    same_head = build_skeleton("resnet18")  # 1,000 outputs, as the trained weights have names
    assert weights_class_names("resnet18", "none", checkpoint="finetuned.pt", model=same_head) == expected
    lite = weights_class_names("efficientnet_lite0", None, "lite0.pt", build_skeleton("efficientnet_lite0"))
    assert lite is not None and len(lite) == 1000 and lite[0].startswith("tench, ")


def test_a_checkpoint_with_another_head_has_no_names() -> None:
    with torch.device("meta"):
        ten_classes = resnet18(num_classes=10)
    assert model_output_count(ten_classes) == 10
    assert weights_class_names("resnet18", "none", checkpoint="finetuned.pt", model=ten_classes) is None


def test_given_class_names_win_over_the_weights() -> None:
    given = tuple(f"class {index}" for index in range(1000))
    config = DissectConfig(model="resnet18", layers=("fc",), probe="cifar100", class_names=given)
    assert run_class_names(config, build_skeleton("resnet18")) == list(given)
    assert run_class_names(replace(config, class_names=None), build_skeleton("resnet18")) == weights_class_names(
        "resnet18", "DEFAULT"
    )


def test_a_class_name_too_long_or_with_a_control_character_is_refused_naming_its_line() -> None:
    longest = "x" * MAX_CLASS_NAME_CHARS
    assert parse_class_names(f"cat\n{longest}\n") == ("cat", longest)
    with pytest.raises(
        DissectError,
        match=f"class name 2 of the class names file is 301 characters long, over the limit of {MAX_CLASS_NAME_CHARS}",
    ):
        parse_class_names("cat\n" + "x" * (MAX_CLASS_NAME_CHARS + 1))
    with pytest.raises(DissectError, match="class name 1 of the class names file holds the control character U\\+001B"):
        parse_class_names("\x1b[31mred\n")
    with pytest.raises(DissectError, match="U\\+0000"):
        parse_class_names("cat\ndo\x00g\n")
    assert parse_class_names("caf\u00e9 \u202ftabby\n") == (
        "caf\u00e9 \u202ftabby",
    )  # letters and spaces of any script


def test_a_count_mismatch_names_both_counts_and_the_fix() -> None:
    config = DissectConfig(model="resnet18", layers=("fc",), probe="cifar100", class_names=("cat", "dog"))
    with pytest.raises(DissectError, match=r"head has 1000 outputs but 2 class names were given; give one name per"):
        run_class_names(config, build_skeleton("resnet18"))
    with pytest.raises(DissectError, match=r"checkpoint's head has 10 outputs but the class names file has 1000 lines"):
        check_class_names(["x"] * 1000, 10, head="the checkpoint's head", file="the class names file")
    with pytest.raises(DissectError, match=r"no final nn\.Linear"):
        check_class_names(["x"], None)


def test_a_class_names_file_is_one_name_per_line_blank_lines_ignored(tmp_path: Path) -> None:
    assert parse_class_names("tench\n\n  goldfish \r\n\n") == ("tench", "goldfish")
    with pytest.raises(DissectError, match="names no class"):
        parse_class_names("\n \n")
    latin = tmp_path / "names.txt"
    latin.write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(DissectError, match="not UTF-8"):
        read_class_names(latin)
    with pytest.raises(DissectError, match="cannot read the class names file"):
        read_class_names(tmp_path / "missing.txt")


@pytest.mark.parametrize("class_names", [(), "cat\ndog", ("cat", ""), ("two\nlines",), (1, 2)])
def test_the_config_refuses_unusable_class_names(class_names: object) -> None:
    config = DissectConfig(model="resnet18", layers=("fc",), probe="cifar100", class_names=class_names)  # type: ignore[arg-type]
    with pytest.raises(DissectError, match="class_names must be a list of one-line class names"):
        config.validate()


def test_class_names_round_trip_through_the_stored_settings() -> None:
    config = DissectConfig(model="resnet18", layers=("fc",), probe="cifar100", class_names=("cat", "dog"))
    stored = config.to_dict()
    assert stored["class_names"] == ["cat", "dog"]
    assert DissectConfig.from_dict(stored) == config
