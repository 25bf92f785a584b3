"""What the target model outputs on the probe images, recorded in the probe pass: its logits and, when a final
linear (or 1x1 convolution) classifier makes them, that classifier's inputs, weight and bias."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass
class ModelOutputs:
    """The model's outputs on every readable probe image (image order), recorded in the same pass as activations.

    `logits` [N, C] float32 are the model's final outputs. `classifier_layer` names the final nn.Linear or 1x1
    nn.Conv2d producing them (None when none does); `classifier_inputs` [N, D] are its input as it receives it (after
    pooling, activation and dropout), `classifier_weight` [C, D] and `classifier_bias` [C] its parameters.
    `feeding_layer` is the dissected layer whose units are the classifier's D inputs (None when none is).
    """

    logits: Tensor
    classifier_layer: str | None = None
    classifier_inputs: Tensor | None = None
    classifier_weight: Tensor | None = None
    classifier_bias: Tensor | None = None
    feeding_layer: str | None = None

    @property
    def predicted(self) -> Tensor:
        """Return each image's predicted class [N] (the highest logit; the lower class index on ties)."""
        return self.logits.argmax(dim=1)
