"""Target networks: built-in names, torchvision and timm architectures, TorchScript, meta skeletons, layers."""

from __future__ import annotations

import contextlib
import difflib
import functools
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from dissect_core.data.hashing import file_sha256
from dissect_core.errors import DissectError
from dissect_core.models.layer_info import LayerInfo
from dissect_core.models.state_dicts import apply_state_dict, read_state_dict
from dissect_core.names import DEFAULT_SEED, is_torchscript_name, random_init_seed
from dissect_core.preprocessing import (
    FALLBACK_PREPROCESSING,
    Preprocessing,
    preset_preprocessing,
    timm_preprocessing,
    with_overrides,
)
from dissect_core.seeding import seeded_init

EFFICIENTNET_LITE = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
TIMM_PREFIX = "timm:"
T = TypeVar("T")


@dataclass
class Target:
    """A loaded target network with its preprocessing and a stable identity for caches."""

    name: str
    model: nn.Module
    preprocessing: Preprocessing
    identity: str


def _torchvision_model_names() -> list[str]:
    from torchvision import models

    return sorted(models.list_models(module=models))


def _unknown_model(name: str) -> DissectError:
    choices = [*EFFICIENTNET_LITE, *_torchvision_model_names()]
    close = difflib.get_close_matches(name, choices, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return DissectError(
        f"unknown model {name!r}.{hint} Use a torchvision name (resnet18, vit_b_16, ...), "
        f"{', '.join(EFFICIENTNET_LITE)}, timm:NAME, or a TorchScript file"
    )


def _unknown_timm_model(name: str) -> DissectError:
    import timm

    close = difflib.get_close_matches(name, timm.list_models(), n=3)
    return DissectError(f"timm has no model {name!r}; close names: {', '.join(close) or 'none'}")


def _random_seed(weights: str | None) -> int | None:
    """Return the seed of the random initialisation `weights` asks for (left out: `none`), or None for real ones."""
    return random_init_seed(weights) if weights else DEFAULT_SEED


def _random_id(seed: int) -> str:
    """Return how a target's identity names random weights drawn from `seed`."""
    return f"random-seed{seed}"


def _torchvision_preprocessing(name: str, weights_enum: Any) -> Preprocessing:
    """Return the preprocessing of `weights_enum`, else of the architecture's DEFAULT weights, else the fallback."""
    from torchvision import models

    if weights_enum is None:
        try:
            weights_enum = models.get_model_weights(name).DEFAULT
        except ValueError:  # an architecture without a weights enum: nothing says how to feed it
            return FALLBACK_PREPROCESSING
    return preset_preprocessing(weights_enum.transforms())


def _load_torchvision(name: str, weights: str | None) -> tuple[nn.Module, Preprocessing, str]:
    from torchvision import models

    if name not in _torchvision_model_names():
        raise _unknown_model(name)
    seed = _random_seed(weights)
    weights_enum: Any = None
    if seed is None:
        choices = models.get_model_weights(name)
        try:
            weights_enum = choices.DEFAULT if weights == "DEFAULT" else choices[weights]
        except KeyError:
            members = ", ".join(member.name for member in choices)
            raise DissectError(f"{name} has no weights {weights!r}; choose DEFAULT, none or one of {members}") from None
    try:
        with seeded_init(seed):
            model = models.get_model(name, weights=weights_enum)
    except Exception as error:  # a download that fails offline
        raise DissectError(
            f"could not load {name} weights {weights} ({type(error).__name__}: {error}); go online once, "
            "use --weights none with --checkpoint FILE, or a built-in offline model like efficientnet_lite0"
        ) from error
    weights_id = _random_id(seed) if seed is not None else weights_enum.name
    return model, _torchvision_preprocessing(name, weights_enum), f"torchvision:{name}:{weights_id}"


def _load_timm(name: str, weights: str | None) -> tuple[nn.Module, Preprocessing, str]:
    import timm

    seed = _random_seed(weights)
    try:
        with seeded_init(seed):
            model = timm.create_model(name, pretrained=seed is None)
    except RuntimeError as error:
        if "Unknown model" in str(error):
            raise _unknown_timm_model(name) from None
        raise DissectError(f"could not create timm model {name} ({error})") from error
    except Exception as error:
        raise DissectError(
            f"could not download timm weights for {name} ({type(error).__name__}); go online once or use "
            "--weights none with --checkpoint FILE"
        ) from error
    preprocessing = timm_preprocessing(timm.data.resolve_data_config({}, model=model))
    weights_id = "pretrained" if seed is None else _random_id(seed)
    return model, preprocessing, f"timm:{name}:{weights_id}:{timm.__version__}"


def _load_efficientnet_lite(name: str, weights: str | None) -> tuple[nn.Module, Preprocessing, str]:
    from dissect_core.models.efficientnet_lite import (
        build_efficientnet_lite,
        efficientnet_lite_target_preprocessing,
        efficientnet_lite_weights_hash,
    )

    # Unlike the other loaders, left-out weights here mean the shipped ones (as they always have).
    seed = random_init_seed(weights) if weights else None
    with seeded_init(seed):
        model = build_efficientnet_lite(name, pretrained=seed is None)
    preprocessing = efficientnet_lite_target_preprocessing(name)
    weights_id = efficientnet_lite_weights_hash(name)[:16] if seed is None else _random_id(seed)
    return model, preprocessing, f"efficientnet_lite:{name}:{weights_id}"


def build_skeleton(name: str) -> nn.Module:
    """Return architecture `name` with its parameters and buffers on PyTorch's meta device: their shapes and
    dtypes, with no weights allocated, initialised or downloaded. Raise DissectError when it cannot be built so."""
    _check_architecture_name(name)
    # On the meta device every tensor the constructor makes is shapes only; a constructor that computes with
    # tensors (RegNet's stage widths) cannot run there, so it is built on the CPU with each parameter and buffer
    # moved to the meta device as it is registered, before any initialisation touches it.
    with contextlib.suppress(Exception), torch.device("meta"):
        return _architecture(name)
    try:
        with _registering_on_meta():
            return _architecture(name)
    except Exception as error:
        raise DissectError(
            f"{name} cannot be built without weights on PyTorch's meta device ({type(error).__name__}: "
            f"{str(error)[:200]}); list its layers with `neuron-atlas layers --model {name}` instead"
        ) from error


def _check_architecture_name(name: str) -> None:
    """Raise DissectError with the closest names unless `name` is a built-in, torchvision or timm architecture."""
    if name in EFFICIENTNET_LITE:
        return
    if name.startswith(TIMM_PREFIX):
        import timm

        if not timm.is_model(name[len(TIMM_PREFIX) :]):
            raise _unknown_timm_model(name[len(TIMM_PREFIX) :])
    elif name not in _torchvision_model_names():
        raise _unknown_model(name)


def _architecture(name: str) -> nn.Module:
    """Return architecture `name` as its constructor initialises it (no weights loaded or downloaded)."""
    if name in EFFICIENTNET_LITE:
        from dissect_core.models.efficientnet_lite import build_efficientnet_lite

        return build_efficientnet_lite(name, pretrained=False)
    if name.startswith(TIMM_PREFIX):
        import timm

        return timm.create_model(name[len(TIMM_PREFIX) :], pretrained=False)
    from torchvision import models

    return models.get_model(name, weights=None)


_META_REGISTRATION = threading.local()


def _onto_meta(_module: nn.Module, _name: str, value: Tensor | None) -> Tensor | None:
    """Return a registered parameter or buffer moved to the meta device while this thread builds a skeleton,
    else None (registered as it is)."""
    if value is None or value.is_meta or not getattr(_META_REGISTRATION, "active", False):
        return None
    if isinstance(value, nn.Parameter):
        return nn.Parameter(value.to("meta"), requires_grad=value.requires_grad)
    return value.to("meta")


@functools.cache
def _install_meta_registration() -> None:
    """Install the registration hooks once per process; they act only in a thread inside `_registering_on_meta`."""
    from torch.nn.modules.module import (
        register_module_buffer_registration_hook,
        register_module_parameter_registration_hook,
    )

    # torch annotates the hooks as returning None; its documentation lets them return the value to register.
    register_module_parameter_registration_hook(_onto_meta)  # type: ignore[arg-type]
    register_module_buffer_registration_hook(_onto_meta)  # type: ignore[arg-type]


@contextlib.contextmanager
def _registering_on_meta() -> Iterator[None]:
    """Return a context in which modules built by this thread register their parameters and buffers on meta."""
    _install_meta_registration()
    _META_REGISTRATION.active = True
    try:
        yield
    finally:
        _META_REGISTRATION.active = False


def load_target(
    name: str,
    weights: str | None = "DEFAULT",
    checkpoint: str | None = None,
    device: torch.device | str = "cpu",
    preprocessing: Mapping[str, Any] | None = None,
) -> Target:
    """Return the target network `name` with weights (or a checkpoint) applied, in eval mode on `device`.

    Random weights (`none`, `none@SEED`) are drawn from the seed, the same in every process. The target sees
    images as its weights were trained to (their own preprocessing; an architecture's DEFAULT weights' for
    random weights and checkpoints), with `preprocessing` overriding settings of that.
    """
    path = Path(name).expanduser()
    if is_torchscript_name(name) and path.is_file():
        try:
            model = torch.jit.load(str(path), map_location="cpu")
        except Exception as error:
            raise DissectError(
                f"{path} is not a TorchScript module ({type(error).__name__}); pass a torch.jit.save'd file, or "
                "a state dict with --checkpoint and the architecture's name as --model"
            ) from error
        name, own_preprocessing, identity = path.stem, FALLBACK_PREPROCESSING, f"torchscript:sha256:{file_sha256(path)}"
    else:
        if checkpoint:
            weights = "none"
        if name in EFFICIENTNET_LITE:
            model, own_preprocessing, identity = _load_efficientnet_lite(name, weights)
        elif name.startswith(TIMM_PREFIX):
            model, own_preprocessing, identity = _load_timm(name[len(TIMM_PREFIX) :], weights)
        else:
            model, own_preprocessing, identity = _load_torchvision(name, weights)
        if checkpoint:
            apply_state_dict(model, read_state_dict(checkpoint), name)
            identity = f"{identity.rsplit(':', 1)[0]}:checkpoint-sha256:{file_sha256(Path(checkpoint).expanduser())}"
    target = Target(name, model, with_overrides(own_preprocessing, preprocessing or {}), identity)
    target.model.eval().to(device)
    return target


def get_layer(model: nn.Module, name: str) -> nn.Module:
    """Return the submodule at dotted path `name`, or raise with the closest layer names."""
    try:
        return model.get_submodule(name)
    except AttributeError:
        names = [module_name for module_name, _ in model.named_modules() if module_name]
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise DissectError(
            f"the model has no layer {name!r}{hint} List its layers with `neuron-atlas layers --model ...`"
        ) from None


def list_layers(model: nn.Module, input_size: int = 224, *, strict: bool = False) -> list[LayerInfo]:
    """Return every named submodule in the order a forward pass first calls it, with its output shape.

    The model may be on any device, the meta device included (shapes are traced, nothing is computed). When the
    forward pass fails, the layers come in definition order without shapes, or `strict` raises DissectError.
    """
    order: list[str] = []
    shapes: dict[str, tuple[int, ...]] = {}
    handles = []

    def make_hook(module_name: str) -> Callable:
        def hook(_module: nn.Module, _inputs: object, output: object) -> None:
            if module_name not in shapes:
                order.append(module_name)
                value = output[0] if isinstance(output, tuple | list) and output else output
                shapes[module_name] = tuple(value.shape[1:]) if isinstance(value, Tensor) else ()

        return hook

    modules = dict(model.named_modules())
    for module_name, module in modules.items():
        if module_name and not isinstance(module, torch.jit.ScriptModule):
            handles.append(module.register_forward_hook(make_hook(module_name)))
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    try:
        with torch.inference_mode():
            model(torch.zeros(1, 3, input_size, input_size, device=device))
    except Exception as error:  # some models need other input sizes; fall back to definition order
        if strict:
            raise DissectError(
                f"a forward pass of one {input_size}x{input_size} image failed ({type(error).__name__}: "
                f"{str(error).splitlines()[0][:200] if str(error) else 'no message'})"
            ) from error
        order.clear()
    finally:
        for handle in handles:
            handle.remove()
    never_called = [name for name in modules if name and name not in shapes]
    return [
        LayerInfo(name, type(modules[name]).__name__, shapes.get(name) or None)
        for name in (order or [n for n in modules if n]) + ([] if not order else never_called)
    ]


def skeleton_layers(name: str) -> list[LayerInfo]:
    """Return architecture `name`'s layers in forward order with output shapes at the input size it is fed with
    random weights or a checkpoint, traced on the meta device: no weights are built, initialised or downloaded."""
    model = build_skeleton(name).eval()
    return list_layers(model, _default_preprocessing(name, model).crop)


def _default_preprocessing(name: str, model: nn.Module) -> Preprocessing:
    """Return how `load_target` feeds architecture `name` images when it has random weights or a checkpoint."""
    if name in EFFICIENTNET_LITE:
        from dissect_core.models.efficientnet_lite import efficientnet_lite_target_preprocessing

        return efficientnet_lite_target_preprocessing(name)
    if name.startswith(TIMM_PREFIX):
        import timm

        return timm_preprocessing(timm.data.resolve_data_config({}, model=model))
    return _torchvision_preprocessing(name, None)
