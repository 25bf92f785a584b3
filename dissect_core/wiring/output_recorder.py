"""Recording the target's outputs in the probe pass: its logits on every image and, when a final linear (or 1x1
convolution) classifier makes them, what that classifier receives (a forward hook on it, so no second pass)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from dissect_core.analysis.outputs import ModelOutputs


def classifier_candidate(model: nn.Module) -> str | None:
    """Return the name of the last nn.Linear or 1x1 nn.Conv2d in module order (the classifier, when the logits
    turn out to be its output), or None when the model has neither."""
    candidate = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) or (isinstance(module, nn.Conv2d) and module.kernel_size == (1, 1)):
            candidate = name
    return candidate


def _rows(value: Tensor) -> Tensor:
    """Return a batch's tensor as [B, features] (a 1x1 convolution's [B, C, 1, 1] flattened)."""
    return value.detach().float().flatten(start_dim=1)


def logits_of(output: object) -> Tensor | None:
    """Return a model's [B, C] logits from its output (the first tensor of a tuple), or None when it has none."""
    value = output[0] if isinstance(output, tuple | list) and output else output
    if isinstance(value, Tensor) and value.dim() >= 2 and value[0].numel() == value.shape[1]:
        return _rows(value)
    return None


class OutputRecorder:
    """Keeps the logits of every batch and, through a forward hook, the classifier's inputs; a classifier whose
    output is not the logits on every batch is dropped (`outputs()` then gives the logits alone)."""

    def __init__(self, model: nn.Module, n_images: int) -> None:
        self.model = model
        self.n_images = n_images
        self.classifier_layer = classifier_candidate(model)
        self._logits: Tensor | None = None
        self._inputs: Tensor | None = None
        self._seen: tuple[Tensor, Tensor] | None = None  # the hooked classifier's (input, output) on this batch
        self._classifier_ok = self.classifier_layer is not None
        self._unusable = False
        self._handle: torch.utils.hooks.RemovableHandle | None = None

    def _hook(self, _module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        self._seen = (_rows(inputs[0]), _rows(output))

    def __enter__(self) -> OutputRecorder:
        if self.classifier_layer is not None:
            self._handle = self.model.get_submodule(self.classifier_layer).register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def add(self, output: object, image_indices: Sequence[int]) -> None:
        """Keep one batch's logits (from the model's `output`) and the classifier's inputs on it."""
        logits = logits_of(output)
        seen, self._seen = self._seen, None
        if logits is None or self._unusable:
            self._unusable = True
            return
        index = torch.as_tensor(list(image_indices), dtype=torch.long, device=logits.device)
        if self._logits is None:
            self._logits = torch.zeros(self.n_images, logits.shape[1], device=logits.device)
        self._logits[index] = logits
        if not self._classifier_ok:
            return
        if seen is None or seen[1].shape != logits.shape or not torch.equal(seen[1], logits):
            self._classifier_ok, self._inputs = False, None
            return
        if self._inputs is None:
            self._inputs = torch.zeros(self.n_images, seen[0].shape[1], device=logits.device)
        self._inputs[index] = seen[0]

    def outputs(self) -> ModelOutputs | None:
        """Return the recorded outputs (on the CPU, probe order), or None when the model's output is no [B, C]."""
        if self._logits is None or self._unusable:
            return None
        if not self._classifier_ok or self._inputs is None or self.classifier_layer is None:
            return ModelOutputs(logits=self._logits.cpu())
        classifier = self.model.get_submodule(self.classifier_layer)
        assert isinstance(classifier, nn.Linear | nn.Conv2d)  # what `classifier_candidate` finds
        weight = _rows(classifier.weight).cpu()
        bias = classifier.bias
        return ModelOutputs(
            logits=self._logits.cpu(),
            classifier_layer=self.classifier_layer,
            classifier_inputs=self._inputs.cpu(),
            classifier_weight=weight,
            classifier_bias=None if bias is None else bias.detach().float().cpu(),
        )
