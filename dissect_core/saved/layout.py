"""A saved run's folder, file by file: the one place that names its files and its manifest's fields.

```
<folder>/
  manifest.json        format and version, n_images, n_concepts, layers with unit counts, every other file's
                       bytes and sha256
  results.csv          one row per neuron (dissect_core.neuron_rows), as `neuron-atlas dissect --out` writes it
  results.json         the record, and per layer its evaluation and its rows with their top images
  settings.json        the run's record (RunRecord.to_json), as `neuron-atlas dissect --out` writes it
  run.json             what rebuilds the result: image ids and paths, concepts, per layer its kind, evaluation,
                       neurons and top images, the connections' and the weight finding's fields, the outputs' names
  tensors.safetensors  image_embeddings, log_normalisers, carry_cosines, reference_spreads;
                       layer.<i>.activations / .top_indices / .top_maps; outputs.<name>; connection.<j>.weights
  images/<index>.jpg   each probe image's view (resize + centre crop, as the model saw it), crop x crop pixels
```
"""

from __future__ import annotations

import re

FORMAT = "neuron-atlas-run"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
RESULTS_CSV = "results.csv"
RESULTS_JSON = "results.json"
SETTINGS_JSON = "settings.json"
RUN_JSON = "run.json"
TENSORS = "tensors.safetensors"
IMAGES = "images"
#: The files every saved folder holds besides the manifest and the views.
FIXED_FILES = (RESULTS_CSV, RESULTS_JSON, SETTINGS_JSON, RUN_JSON, TENSORS)
#: Every name a saved folder's manifest may list: the fixed files, and one view per probe image (no leading zeros).
MEMBER_NAME = re.compile("|".join(map(re.escape, FIXED_FILES)) + rf"|{IMAGES}/(?:0|[1-9][0-9]{{0,8}})\.jpg")
#: The JPEG quality of the views (as the app's media store encodes them).
VIEW_JPEG_QUALITY = 85
#: File name suffixes and leading bytes that mark a pickle (torch.save's zip holds one too).
PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt", ".npy", ".npz", ".joblib")
PICKLE_MAGIC = (b"\x80", b"PK\x03\x04")


def view_name(index: int) -> str:
    """Return the saved name of probe image `index`'s view."""
    return f"{IMAGES}/{index}.jpg"


def tensor_key(*parts: object) -> str:
    """Return the key of a tensor in tensors.safetensors, e.g. `layer.0.activations`."""
    return ".".join(str(part) for part in parts)
