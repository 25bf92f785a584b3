"""Which dissected layers one module's weights join, and those weights as the module sees them.

Downstream units are reached through weights when one nn.Linear or nn.Conv2d (groups 1) lies after the upstream
layer with only per-channel affine maps (BatchNorm, folded in), activations, pooling, dropout or flattening between,
and, after the module, only per-channel maps up to the downstream layer. The structure is read from a torch.fx
trace of the model (dissected layers, convolutions, linears and BatchNorms kept whole); a model that does not trace
is read in module order under a conservative rule (the modules between must all be of those kinds).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.fx
from torch import Tensor, nn

#: Modules that keep each channel apart and carry no weight of their own: they may lie between the layers.
_PASS_THROUGH_MODULES: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.SiLU, nn.GELU, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid, nn.Tanh, nn.LeakyReLU, nn.ELU,
    nn.Mish, nn.Identity, nn.Dropout, nn.Dropout2d, nn.Flatten, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d,
    nn.AvgPool2d, nn.MaxPool2d,
)  # fmt: skip
_PASS_THROUGH_FUNCTIONS = {
    torch.flatten, torch.relu, torch.sigmoid, torch.tanh, torch.mean, torch.amax,
    nn.functional.relu, nn.functional.relu6, nn.functional.silu, nn.functional.gelu, nn.functional.hardswish,
    nn.functional.dropout, nn.functional.adaptive_avg_pool2d, nn.functional.adaptive_max_pool2d,
    nn.functional.avg_pool2d, nn.functional.max_pool2d,
}  # fmt: skip
_PASS_THROUGH_METHODS = {"flatten", "relu", "sigmoid", "tanh", "mean", "amax", "squeeze", "contiguous"}
#: Module-order reading of untraceable models: modules that may come between without a trace to check the wiring.
_ORDER_PASS_THROUGH = (*_PASS_THROUGH_MODULES, nn.modules.batchnorm._BatchNorm)


@dataclass(frozen=True)
class WeightPath:
    """One module joining two layers: its name, the BatchNorms folded before and after it, and how it was found."""

    module: str
    before: tuple[str, ...]
    after: tuple[str, ...]
    method: Literal["fx", "module order"]


def _is_weight_module(module: nn.Module) -> bool:
    """Return whether `module` is a linear map whose weight joins every input unit to every output unit."""
    return isinstance(module, nn.Linear) or (isinstance(module, nn.Conv2d) and module.groups == 1)


def _is_affine(module: nn.Module) -> bool:
    """Return whether `module` is a BatchNorm with fixed statistics (a per-channel affine map in eval mode)."""
    return isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats


class _LayerTracer(torch.fx.Tracer):
    """Traces a model keeping the dissected layers, convolutions, linears and BatchNorms as single nodes."""

    def __init__(self, keep: set[str]) -> None:
        super().__init__()
        self.keep = keep

    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        """Return whether the trace keeps `module` whole."""
        whole = (nn.Conv2d, nn.Linear, nn.modules.batchnorm._BatchNorm)
        return (
            qualified_name in self.keep or isinstance(module, whole) or super().is_leaf_module(module, qualified_name)
        )


def trace_layers(model: nn.Module, layers: list[str]) -> torch.fx.Graph | None:
    """Return the model's fx graph with the named layers as nodes, or None when it does not trace."""
    try:
        return _LayerTracer(set(layers)).trace(model)
    except Exception:  # control flow on tensors, unsupported Python: read in module order instead
        return None


def _single_input(node: torch.fx.Node) -> torch.fx.Node | None:
    """Return the one node a node computes from (its other arguments constants), or None."""
    inputs = node.all_input_nodes
    return inputs[0] if len(inputs) == 1 else None


def _passes_through(model: nn.Module, node: torch.fx.Node) -> bool:
    """Return whether the node keeps each channel apart and has no weight (folded affines count)."""
    if node.op == "call_module":
        module = model.get_submodule(str(node.target))
        return isinstance(module, _PASS_THROUGH_MODULES) or _is_affine(module)
    if node.op == "call_function":
        return node.target in _PASS_THROUGH_FUNCTIONS
    return node.op == "call_method" and node.target in _PASS_THROUGH_METHODS


def _affine_name(model: nn.Module, node: torch.fx.Node) -> str | None:
    """Return the node's module name when it is a foldable BatchNorm, else None."""
    if node.op == "call_module" and _is_affine(model.get_submodule(str(node.target))):
        return str(node.target)
    return None


def _fx_path(model: nn.Module, graph: torch.fx.Graph, from_layer: str, to_layer: str) -> WeightPath | None:
    """Return the one weight module joining the layers in the traced graph, or None when there is none."""
    nodes = {str(node.target): node for node in graph.nodes if node.op == "call_module"}
    if from_layer not in nodes or to_layer not in nodes:
        return None
    node: torch.fx.Node | None = nodes[to_layer]
    after: list[str] = []
    while node is not None and not (
        node.op == "call_module" and _is_weight_module(model.get_submodule(str(node.target)))
    ):
        affine = _affine_name(model, node)
        if not (affine or _passes_through(model, node)) or str(node.target) == from_layer:
            return None
        after += [affine] if affine else []
        node = _single_input(node)
    if node is None:
        return None
    module = str(node.target)
    before: list[str] = []
    node = _single_input(node)
    while node is not None and not (node.op == "call_module" and str(node.target) == from_layer):
        if not _passes_through(model, node):
            return None
        affine = _affine_name(model, node)
        before += [affine] if affine else []
        node = _single_input(node)
    if node is None:
        return None
    return WeightPath(module, tuple(reversed(before)), tuple(reversed(after)), "fx")


def _order_path(model: nn.Module, from_layer: str, to_layer: str) -> WeightPath | None:
    """Return the weight module joining the layers in module order, when every module between may pass through."""
    leaves = [(name, module) for name, module in model.named_modules() if not list(module.children())]
    names = [name for name, _ in leaves]
    inside_from = [i for i, name in enumerate(names) if name == from_layer or name.startswith(f"{from_layer}.")]
    if to_layer not in names or not inside_from:
        return None
    to_index = names.index(to_layer)
    module_index = to_index
    while module_index > inside_from[-1] and not _is_weight_module(leaves[module_index][1]):
        if not _is_affine(leaves[module_index][1]) and not isinstance(leaves[module_index][1], _PASS_THROUGH_MODULES):
            return None
        module_index -= 1
    if module_index <= inside_from[-1]:
        return None
    between = leaves[inside_from[-1] + 1 : module_index]
    if not all(isinstance(module, _ORDER_PASS_THROUGH) for _, module in between):
        return None
    after = [name for name, module in leaves[module_index + 1 : to_index + 1] if _is_affine(module)]
    before = [name for name, module in between if _is_affine(module)]
    return WeightPath(names[module_index], tuple(before), tuple(after), "module order")


def weight_path(model: nn.Module, graph: torch.fx.Graph | None, from_layer: str, to_layer: str) -> WeightPath | None:
    """Return the one linear or convolutional module joining `from_layer` to `to_layer` (with the BatchNorms to
    fold), read from `graph` when the model traced, else in module order; None when no single module does."""
    if graph is not None:
        return _fx_path(model, graph, from_layer, to_layer)
    return _order_path(model, from_layer, to_layer)


def _affine_scale(batch_norm: nn.Module) -> Tensor:
    """Return a BatchNorm's per-channel scale in eval mode: weight / sqrt(running variance + eps)."""
    assert isinstance(batch_norm, nn.modules.batchnorm._BatchNorm) and batch_norm.running_var is not None
    scale = 1 / torch.sqrt(batch_norm.running_var.detach().double() + batch_norm.eps)
    return scale * batch_norm.weight.detach().double() if batch_norm.weight is not None else scale


def path_weights(model: nn.Module, path: WeightPath) -> Tensor:
    """Return the [out, in] float32 weights of the path's module as it sees its units: a linear's weight, or per
    (out, in) channel the L2 norm of a convolution's kernel slice with the sign of its sum; the BatchNorms before
    it scale its columns and those after it its rows."""
    module = model.get_submodule(path.module)
    assert isinstance(module, nn.Linear | nn.Conv2d)  # what `weight_path` finds
    weight = module.weight.detach().double().cpu()
    if weight.dim() == 4:
        weight = weight.flatten(2).norm(dim=2) * torch.sign(weight.flatten(2).sum(dim=2))
    for name in path.before:
        weight = weight * _affine_scale(model.get_submodule(name)).cpu().unsqueeze(0)
    for name in path.after:
        weight = weight * _affine_scale(model.get_submodule(name)).cpu().unsqueeze(1)
    return weight.float()


def path_note(path: WeightPath) -> str:
    """Return one line saying how the path's weights were read."""
    folded = path.before + path.after
    fold = f", BatchNorm {', '.join(folded)} folded in" if folded else ""
    where = "a torch.fx trace" if path.method == "fx" else "module order (the model did not trace; assumes no skip)"
    return f"weights of {path.module}{fold}; structure from {where}"
