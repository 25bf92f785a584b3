"""Main stages pick blocks, not containers (#26): EfficientNet-Lite's `blocks` (a Sequential of 7 stages) gives
every second stage, while ResNet's stages (Sequentials of blocks) stay whole."""

from __future__ import annotations

import timm

from dissect_core.models.main_stages import main_stages


def _layers(model_name: str) -> list[tuple[str, str]]:
    model = timm.create_model(model_name, pretrained=False)
    return [(name, type(module).__name__) for name, module in model.named_modules() if name]


def test_efficientnet_lite0_preselects_blocks_not_the_container() -> None:
    stages = main_stages(_layers("tf_efficientnet_lite0"))
    assert stages == ["conv_stem", "blocks.1", "blocks.3", "blocks.5", "conv_head", "classifier"]


def test_a_short_container_of_stages_gives_all_its_stages() -> None:
    layers = [("stem", "Conv2d"), ("stages", "Sequential")]
    layers += [(f"stages.{i}", "Sequential") for i in range(3)]
    layers += [(f"stages.{i}.0", "Bottleneck") for i in range(3)] + [("head", "Linear")]
    assert main_stages(layers) == ["stem", "stages.0", "stages.1", "stages.2", "head"]


def test_resnet_stages_stay_whole() -> None:
    assert main_stages(_layers("resnet18")) == ["conv1", "layer1", "layer2", "layer3", "layer4", "fc"]
