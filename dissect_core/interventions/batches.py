"""Which probe images an intervention runs over, and how they reach the model: in the probe pass's batches and
preprocessing, so that an intervention that changes nothing reproduces the recorded outputs."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import Tensor, nn

from dissect_core.data.probe import ProbeSet, iter_decoded_batches
from dissect_core.errors import DissectError
from dissect_core.preprocessing import Preprocessing


class InterventionCancelled(Exception):
    """Raised between batches when the caller's `should_stop` says to stop; nothing is returned."""


#: One batch of an intervention: the images' probe positions and their preprocessed pixels [B, 3, H, W].
ImageBatch = tuple[Sequence[int], Tensor]


def sample_images(n_images: int, bound: int, seed: int) -> list[int]:
    """Return the ascending probe positions an intervention runs over: all `n_images` when they are at most
    `bound`, else a `seed`-seeded sample of `bound` of them (the same arguments always give the same sample)."""
    if n_images < 0 or bound < 1:
        raise DissectError(f"cannot sample {bound} of {n_images} images; ask for at least 1 of a non-negative count")
    if n_images <= bound:
        return list(range(n_images))
    return sorted(random.Random(seed).sample(range(n_images), bound))


def probe_batches(
    probe: ProbeSet, positions: Sequence[int], preprocessing: Preprocessing, batch_size: int, num_workers: int = 0
) -> Iterator[ImageBatch]:
    """Yield (probe positions, pixels) for the images at `positions`, `batch_size` at a time, preprocessed as the
    target sees them; unreadable images are left out.

    With every position of a readable probe set and the run's batch size, the batches are the probe pass's, so a
    no-op intervention gives the recorded outputs bit for bit on the same device.
    """
    if any(not 0 <= position < len(probe) for position in positions):
        raise DissectError(f"probe positions must lie in 0..{len(probe) - 1}; draw them with sample_images")
    chosen = ProbeSet(name=probe.name, images=[probe.images[position] for position in positions])
    for good, _unreadable, tensors in iter_decoded_batches(
        chosen, [preprocessing.transform()], batch_size, num_workers=num_workers
    ):
        if good:
            yield [positions[index] for index in good], tensors[0]


def stop_checker(should_stop: Callable[[], bool] | None) -> Callable[[], None]:
    """Return a function that raises InterventionCancelled once `should_stop` says so."""

    def check_stop() -> None:
        if should_stop is not None and should_stop():
            raise InterventionCancelled("the intervention was cancelled")

    return check_stop


def model_device(model: nn.Module, device: torch.device | str | None = None) -> torch.device:
    """Return the device the model's parameters are on, or raise when `device` asks for another one."""
    here = next((parameter.device for parameter in model.parameters()), torch.device("cpu"))
    if device is not None and torch.device(device).type != here.type:
        raise DissectError(f"the model is on {here} but device {device} was asked for; move it with model.to(device)")
    return here
