"""The URL builders: readable dotted layer names, everything else escaped."""

from __future__ import annotations

from app.core.urls import export_url, layer_url, media_url, model_neuron_url, neuron_url


def test_urls_keep_dotted_layer_names_readable_and_escape_the_rest() -> None:
    assert neuron_url(3, "blocks.3", 7) == "/runs/3/layers/blocks.3/neurons/7"
    assert layer_url(3, "features.0", sort="-score", q="", page=None) == "/runs/3/layers/features.0?sort=-score"
    assert layer_url(1, "a b/c") == "/runs/1/layers/a%20b%2Fc"
    assert model_neuron_url("my net", "fc", 1) == "/models/my%20net/layers/fc/neurons/1"
    assert media_url("ab/abcdef.jpg") == "/media/ab/abcdef.jpg"
    assert media_url("ab/a b#.jpg") == "/media/ab/a%20b%23.jpg"
    assert media_url(None) is None
    assert export_url(2, "parquet") == "/api/v1/runs/2/export?format=parquet"
