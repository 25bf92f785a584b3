"""How a run is cut into pieces: image chunks aligned to the batch size, and blocks of a layer's neurons."""

from __future__ import annotations

from dataclasses import dataclass

from dissect_core.errors import DissectError


@dataclass(frozen=True)
class Span:
    """A half-open range [start, stop) of images or neurons, numbered `index` among its siblings."""

    index: int
    start: int
    stop: int

    def __len__(self) -> int:
        return self.stop - self.start


def image_chunks(n_images: int, batch_size: int, chunk_images: int) -> list[Span]:
    """Return the image chunks of a probe set: each a whole number of batches (the last may be shorter), so every
    image meets the forward pass in the same batch as in one pass over all images and gets the same outputs."""
    if chunk_images < batch_size or chunk_images % batch_size:
        raise DissectError(
            f"an image chunk of {chunk_images} images is not a multiple of the batch size {batch_size}, so images "
            f"would meet the network in other batches; use a chunk of k x {batch_size} images"
        )
    return [
        Span(index, start, min(start + chunk_images, n_images))
        for index, start in enumerate(range(0, n_images, chunk_images))
    ]


def neuron_blocks(n_neurons: int, n_blocks: int) -> list[Span]:
    """Return `n_blocks` consecutive blocks of neurons of sizes differing by at most one (fewer for a small layer)."""
    if n_blocks < 1:
        raise DissectError(f"a layer needs at least one block of neurons, not {n_blocks}")
    count = min(n_blocks, n_neurons)
    bounds = [round(block * n_neurons / count) for block in range(count + 1)]
    return [Span(block, bounds[block], bounds[block + 1]) for block in range(count)]
