"""A run's artifacts folder, file by file: the one place that names the files the writer stores and readers read.

```
<run folder>/
  image_embeddings.pt      [stored images, D] the encoder's image embeddings
  log_normalisers.pt       [stored images] logsumexp over the concept set of a*cos (soft-WPMI and WPMI runs only)
  carry_cosines.pt         [stored images] float32, each image's CARRY_RANK-th highest cosine over the concept set
  reference_spreads.pt     [R] float32, sorted: the spreads of the concepts some image carries (analysis.coverage)
  concepts.txt             the concept set, one per line
  concepts.pt              the concept set as a list of strings
  settings.json            the run's pinned settings
  top_indices/<layer>.pt   [units, top_k] the image indices each neuron's score used
  activations/<layer>.pt   [stored images, units] float16 pooled activations
  top_maps/<layer>.pt      [units, top images, h, w] float16 activation maps (spatial layers only)
  distribution_tables/<layer>.pt  every unit's histogram, quantile bands and most correlated units (made after store)
  outputs.safetensors      logits [stored images, C] float16; classifier_inputs [stored images, D] float16 and
                           classifier_weight [C, D] / classifier_bias [C] float32 when a final classifier makes them;
                           metadata: classifier_layer, feeding_layer
  connections.json         the connected layer pairs: from_layer, to_layer, kind, n_images, folded_affine, note
  connections/<from>__<to>.safetensors  weights [units of <to>, units of <from>] float32, signed
  weight_concept_agreement.json  the paper's weight finding per weight-joined pair with class names
```
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.core.errors import AtlasError
from app.core.paths import resolved_path


def layer_file_name(layer_name: str) -> str:
    """Return the layer's name as a file name, or raise when it could name another folder."""
    if not layer_name or "/" in layer_name or "\\" in layer_name or layer_name in (".", ".."):
        raise AtlasError(f"layer name {layer_name!r} cannot name a file; name layers by their module path")
    return layer_name


@dataclass(frozen=True)
class ArtifactsLayout:
    """Where each artifact of one run lies under its folder."""

    folder: Path

    @classmethod
    def of_run(cls, artifacts_dir: str | Path, data_dir: Path) -> ArtifactsLayout:
        """Return the layout of a run's folder as stored on its row (a relative one lies under `data_dir`)."""
        return cls(resolved_path(artifacts_dir, data_dir))

    @property
    def image_embeddings(self) -> Path:
        """Return the file of the stored images' embeddings."""
        return self.folder / "image_embeddings.pt"

    @property
    def log_normalisers(self) -> Path:
        """Return the file of each image's soft-WPMI log normaliser."""
        return self.folder / "log_normalisers.pt"

    @property
    def carry_cosines(self) -> Path:
        """Return the file of each image's carry bar (the concept evidence's)."""
        return self.folder / "carry_cosines.pt"

    @property
    def reference_spreads(self) -> Path:
        """Return the file of the vocabulary's reference spreads (what tells a concept the encoder cannot see)."""
        return self.folder / "reference_spreads.pt"

    @property
    def concepts(self) -> Path:
        """Return the text file of the run's concept set, one per line."""
        return self.folder / "concepts.txt"

    @property
    def concept_list(self) -> Path:
        """Return the tensor file of the run's concept set (a list of strings)."""
        return self.folder / "concepts.pt"

    @property
    def settings(self) -> Path:
        """Return the JSON file of the run's pinned settings."""
        return self.folder / "settings.json"

    def top_indices(self, layer: str) -> Path:
        """Return the file of a layer's top image indices."""
        return self.folder / "top_indices" / f"{layer_file_name(layer)}.pt"

    def activations(self, layer: str) -> Path:
        """Return the file of a layer's float16 activations over the stored images."""
        return self.folder / "activations" / f"{layer_file_name(layer)}.pt"

    def top_maps(self, layer: str) -> Path:
        """Return the file of a spatial layer's top images' float16 activation maps."""
        return self.folder / "top_maps" / f"{layer_file_name(layer)}.pt"

    def distribution_tables(self, layer: str) -> Path:
        """Return the file of a layer's neuron-page tables: histograms, quantile bands, most correlated units."""
        return self.folder / "distribution_tables" / f"{layer_file_name(layer)}.pt"

    @property
    def outputs(self) -> Path:
        """Return the file of the model's logits and its classifier's inputs, weight and bias."""
        return self.folder / "outputs.safetensors"

    def connections(self, from_layer: str, to_layer: str) -> Path:
        """Return the file of the connection weights from one dissected layer to another."""
        return self.folder / "connections" / f"{layer_file_name(from_layer)}__{layer_file_name(to_layer)}.safetensors"

    @property
    def connections_index(self) -> Path:
        """Return the JSON file listing the connected layer pairs and how each was computed."""
        return self.folder / "connections.json"

    @property
    def agreement(self) -> Path:
        """Return the JSON file of the paper's weight finding per weight-joined pair."""
        return self.folder / "weight_concept_agreement.json"
