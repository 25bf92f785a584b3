"""The URL builders: readable dotted layer names, everything else escaped."""

from __future__ import annotations

import pytest

from app.core.urls import (
    architecture_layers_url,
    delete_concept_set_url,
    delete_probe_set_url,
    delete_run_url,
    export_url,
    layer_url,
    layers_url,
    login_url,
    media_url,
    model_neuron_url,
    neuron_url,
    relabel_url,
    run_details_url,
    safe_local_path,
    typed_concepts_url,
)


def test_urls_keep_dotted_layer_names_readable_and_escape_the_rest() -> None:
    assert neuron_url(3, "blocks.3", 7) == "/runs/3/layers/blocks.3/neurons/7"
    assert layer_url(3, "features.0", sort="-score", q="", page=None) == "/runs/3/layers/features.0?sort=-score"
    assert layer_url(1, "a b/c") == "/runs/1/layers/a%20b%2Fc"
    assert model_neuron_url("my net", "fc", 1) == "/models/my%20net/layers/fc/neurons/1"
    assert media_url("ab/abcdef.jpg") == "/media/ab/abcdef.jpg"
    assert media_url("ab/a b#.jpg") == "/media/ab/a%20b%23.jpg"
    assert media_url(None) is None
    assert export_url(2, "parquet") == "/api/v1/runs/2/export?format=parquet"


def test_form_and_panel_paths() -> None:
    assert layers_url(4) == "/runs/4/layers"
    assert run_details_url(4) == "/runs/4/details"
    assert delete_run_url(4) == "/runs/4/delete"
    assert typed_concepts_url(4) == "/runs/4/typed-concepts"
    assert relabel_url(4) == "/runs/4/relabel"
    assert architecture_layers_url("vit_b_16") == "/api/v1/architectures/vit_b_16/layers"
    assert architecture_layers_url("a b/c") == "/api/v1/architectures/a%20b%2Fc/layers"
    assert delete_probe_set_url("street-photos") == "/probe-sets/street-photos/delete"
    assert delete_concept_set_url("textures.v2") == "/concept-sets/textures.v2/delete"


@pytest.mark.parametrize(
    ("target", "safe"),
    [
        ("/", "/"),
        ("/runs/3/layers/blocks.3?sort=-score", "/runs/3/layers/blocks.3?sort=-score"),
        ("//evil.example/x", None),  # another site
        ("https://evil.example/x", None),
        ("/a\\b", None),  # a browser reads the backslash as a slash: another site again
    ],
)
def test_only_a_path_on_this_site_is_safe_to_come_back_to(target: str, safe: str | None) -> None:
    assert safe_local_path(target, default="/home") == (safe or "/home")


def test_the_login_url_comes_back_to_a_safe_path_only() -> None:
    assert login_url("/") == "/login"
    assert login_url("/runs/3/layers/blocks.3?sort=-score") == "/login?next=/runs/3/layers/blocks.3%3Fsort%3D-score"
    assert login_url("https://evil.example/x") == "/login"
