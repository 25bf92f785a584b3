"""Server paths out of messages and settings: catalogued paths by name, any other absolute path by its last part."""

from __future__ import annotations

from app.core.redact import redact_login_tokens, redact_paths, redact_settings, redact_value

NAMES = {"/srv/data/probe-sets/ab12": "pets", "/srv/data/concept-sets/cd34.txt": "textures"}


def test_known_paths_become_their_names_and_keep_what_lies_under_them() -> None:
    assert (
        redact_paths("probe folder /srv/data/probe-sets/ab12 does not exist", NAMES)
        == "probe folder pets does not exist"
    )
    message = "probe image /srv/data/probe-sets/ab12/cats/a.png can no longer be read"
    assert redact_paths(message, NAMES) == "probe image pets/cats/a.png can no longer be read"


def test_other_absolute_paths_keep_only_their_last_part() -> None:
    assert redact_paths("cannot read /etc/passwd (denied)") == "cannot read passwd (denied)"
    assert redact_paths("encoder ViT-B-16:/home/me/w.pt") == "encoder ViT-B-16:w.pt"
    assert redact_paths("weights '/home/me/w.pt' missing") == "weights 'w.pt' missing"


def test_urls_api_addresses_and_relative_paths_stay() -> None:
    text = "download https://example.org/a/b.txt, see /api/v1/encoders, or pass data/20k.txt"
    assert redact_paths(text) == text


def test_settings_are_redacted_at_any_depth() -> None:
    settings = {
        "probe": "/srv/data/probe-sets/ab12",
        "concepts": "/srv/data/concept-sets/cd34.txt",
        "top_k": 5,
        "skipped_images": ["/srv/data/probe-sets/ab12/bad.png"],
        "checkpoint": "/srv/data/checkpoints/x/my.pt",
    }
    assert redact_value(settings, NAMES) == {
        "probe": "pets",
        "concepts": "textures",
        "top_k": 5,
        "skipped_images": ["pets/bad.png"],
        "checkpoint": "my.pt",
    }
    assert redact_value({"probe": "/srv/my images"}) == {"probe": "my images"}


def test_paths_stored_relative_to_the_data_folder_are_named_wherever_it_is() -> None:
    names = {"probe-sets/ab12": "pets", "/srv/street": "street"}
    message = "probe image /mnt/restored/data/probe-sets/ab12/cats/a.png and /srv/street/b.png can no longer be read"
    assert redact_paths(message, names) == "probe image pets/cats/a.png and street/b.png can no longer be read"
    assert redact_paths("no folder /x/probe-sets/ab12", names) == "no folder pets"
    assert redact_paths("no folder /x/probe-sets/ab123", names) == "no folder ab123"


def test_run_settings_show_files_by_name_or_last_part_however_stored() -> None:
    names = {"probe-sets/ab12": "pets"}
    settings = {
        "probe": "probe-sets/ab12",
        "concepts": "20k",
        "checkpoint": "checkpoints/0123/my.pt",
        "labels_file": "/srv/labels.csv",
        "model": "resnet18",
        "skipped_images": ["/srv/data/probe-sets/ab12/bad.png"],
    }
    assert redact_settings(settings, names) == {
        "probe": "pets",
        "concepts": "20k",
        "checkpoint": "my.pt",
        "labels_file": "labels.csv",
        "model": "resnet18",
        "skipped_images": ["pets/bad.png"],
    }


def test_login_tokens_are_redacted_from_logged_urls() -> None:
    line = '127.0.0.1:5 - "GET /login?token=na_Ab-1_x&next=/upload HTTP/1.1" 303'
    assert redact_login_tokens(line) == '127.0.0.1:5 - "GET /login?token=[redacted]&next=/upload HTTP/1.1" 303'
    assert redact_login_tokens("/login?next=/x&token=na_q") == "/login?next=/x&token=[redacted]"
    assert redact_login_tokens("/runs?tokens=3&mytoken=4") == "/runs?tokens=3&mytoken=4"
