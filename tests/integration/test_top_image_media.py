"""Twenty top images per neuron: crops and heatmaps cut on their first request, kept by content hash, served
immutable; nothing but views written at store time; the neuron page pages its top images ten at a time."""

from __future__ import annotations

import hashlib
import html
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from app.core.urls import top_media_url
from app.persistence.media import (
    CROP_SIZE,
    CUT_ON_REQUEST,
    crop_around,
    heatmap_levels,
    heatmap_png,
    jpeg_bytes,
)
from app.persistence.store import store_run
from app.web.routes.media import IMMUTABLE
from dissect_core.results import DissectionResult
from tests.support.dashboard_seed import Dashboard, build_dashboard
from tests.support.fakes import fake_result, make_images

N_TOP = 20
N_IMAGES = 24


@dataclass
class TwentyTops:
    """A seeded dashboard with one more run stored through `store_run`: 20 top images per neuron."""

    dashboard: Dashboard
    client: TestClient
    run_id: int
    result: DissectionResult
    files_after_store: set[Path]


def media_files(media_dir: Path) -> set[Path]:
    """Return every file under the media dir (aliases included)."""
    return {path for path in media_dir.rglob("*") if path.is_file()}


@pytest.fixture(scope="module")
def tops(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwentyTops]:
    root = tmp_path_factory.mktemp("twenty_tops")
    dashboard = build_dashboard(root / "data")
    result = fake_result(make_images(root / "probe", N_IMAGES), n_top=N_TOP, model="twenty-tops-net")
    before = media_files(dashboard.settings.media_dir)
    run_id = store_run(dashboard.engine, dashboard.settings, result)
    after = media_files(dashboard.settings.media_dir)
    with TestClient(dashboard.app(), headers=dashboard.admin_headers) as client:
        yield TwentyTops(dashboard, client, run_id, result, after - before)
    dashboard.engine.dispose()


def neuron_json(tops: TwentyTops, layer: str, unit: int) -> dict:
    response = tops.client.get(f"/api/v1/runs/{tops.run_id}/layers/{layer}/neurons/{unit}")
    assert response.status_code == 200, response.text
    return response.json()


def test_store_writes_views_but_no_crops_or_heatmaps(tops: TwentyTops) -> None:
    # One JPEG view per probe image and the concept list; no crop, no heatmap.
    suffixes = sorted(path.suffix for path in tops.files_after_store)
    assert suffixes.count(".jpg") <= N_IMAGES and ".png" not in suffixes
    assert len(tops.files_after_store) <= N_IMAGES + 1
    for path in tops.files_after_store:
        if path.suffix == ".jpg":
            with Image.open(path) as view:
                assert view.size == (32, 32)  # views, not 112-pixel crops


def test_a_late_top_image_is_cut_on_first_request_then_served_from_its_file(tops: TwentyTops) -> None:
    media_dir = tops.dashboard.settings.media_dir
    neuron = neuron_json(tops, "layer1", 2)
    assert len(neuron["top_images"]) == N_TOP
    late = neuron["top_images"][13]  # beyond the first five (the grid card's) and beyond the first page
    assert late["crop_url"] == top_media_url(tops.run_id, "layer1", 2, late["rank"], "crop")
    assert late["heatmap_url"] == top_media_url(tops.run_id, "layer1", 2, late["rank"], "heatmap")

    files_before = media_files(media_dir)
    first = tops.client.get(late["crop_url"])
    assert first.status_code == 200 and first.headers["content-type"] == "image/jpeg"
    assert first.headers["cache-control"] == IMMUTABLE
    written = media_files(media_dir) - files_before
    assert len(written) == 2  # the crop, by content hash, and the alias naming it
    crop_file = next(path for path in written if path.suffix == ".jpg")
    assert crop_file.read_bytes() == first.content
    assert crop_file.stem == hashlib.sha256(first.content).hexdigest()

    # Exactly the crop the store step used to draw: the view cut around the stored box.
    top = tops.result.layers[0].top_images[2][13]
    view_url = late["view_url"]
    view = Image.open(io.BytesIO(tops.client.get(view_url).content)).convert("RGB")
    assert first.content == jpeg_bytes(crop_around(view, top.box))
    with Image.open(io.BytesIO(first.content)) as crop:
        assert crop.format == "JPEG" and max(crop.size) == CROP_SIZE

    second = tops.client.get(late["crop_url"])
    assert second.status_code == 200 and second.content == first.content
    assert second.headers["cache-control"] == IMMUTABLE
    assert media_files(media_dir) - files_before == written  # a file hit: nothing cut again


def test_a_heatmap_is_drawn_from_the_stored_float16_maps(tops: TwentyTops) -> None:
    neuron = neuron_json(tops, "layer1", 4)
    image = neuron["top_images"][17]
    response = tops.client.get(image["heatmap_url"])
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert response.headers["cache-control"] == IMMUTABLE
    maps = tops.result.layers[0].top_maps
    assert maps is not None
    levels = heatmap_levels(maps[4:5].to(torch.float16).float().numpy())
    assert response.content == heatmap_png(levels[0, 17])
    with Image.open(io.BytesIO(response.content)) as heatmap:
        assert heatmap.size == (4, 4) and "transparency" in heatmap.info
    assert tops.client.get(image["heatmap_url"]).content == response.content


def test_the_stored_rows_say_cut_on_request(tops: TwentyTops) -> None:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from app.persistence.models import Layer, Neuron, TopImage

    with Session(tops.dashboard.engine) as session:
        rows = session.execute(
            select(Layer.name, TopImage.crop_file, TopImage.heatmap_file)
            .join(Neuron, Neuron.id == TopImage.neuron_id)
            .join(Layer, Layer.id == Neuron.layer_id)
            .where(Layer.run_id == tops.run_id)
        ).all()
    assert len(rows) == (6 + 4) * N_TOP
    assert {(layer, crop, heatmap) for layer, crop, heatmap in rows} == {
        ("layer1", CUT_ON_REQUEST, CUT_ON_REQUEST),
        ("fc", CUT_ON_REQUEST, None),
    }


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("layers/layer1/neurons/2/top/20/crop.jpg", "has ranks 0–19; there is no top image 20"),
        ("layers/layer1/neurons/99/top/0/crop.jpg", "has no unit 99"),
        ("layers/nope/neurons/0/top/0/crop.jpg", "has no layer 'nope'"),
        ("layers/layer1/neurons/0/top/0/crop.gif", "ask for crop.jpg or heatmap.png"),
        ("layers/fc/neurons/0/top/0/heatmap.png", "has no heatmap"),
        ("layers/layer1/neurons/0/top/99999999999999999999/crop.jpg", "ids and unit numbers run from 0"),
    ],
)
def test_bad_top_image_media_urls_are_404_with_a_reason(tops: TwentyTops, path: str, message: str) -> None:
    response = tops.client.get(f"/media/runs/{tops.run_id}/{path}")
    assert response.status_code == 404
    assert message in html.unescape(response.text)
    assert str(tops.dashboard.settings.data_dir) not in response.text  # never a server path


def test_a_missing_run_is_404(tops: TwentyTops) -> None:
    response = tops.client.get("/media/runs/9999/layers/layer1/neurons/0/top/0/crop.jpg")
    assert response.status_code == 404 and "There is no run 9999" in response.text


def test_aliases_are_not_served_as_media(tops: TwentyTops) -> None:
    response = tops.client.get("/media/.aliases/x")
    assert response.status_code == 404


def test_the_grid_card_keeps_five_thumbnails(tops: TwentyTops) -> None:
    response = tops.client.get(f"/api/v1/runs/{tops.run_id}/layers/layer1/neurons")
    assert response.status_code == 200
    assert {len(neuron["top_images"]) for neuron in response.json()["items"]} == {5}


def test_the_neuron_page_shows_ten_top_images_a_page(tops: TwentyTops) -> None:
    permalink = f"/runs/{tops.run_id}/layers/layer1/neurons/3"
    first = tops.client.get(permalink)
    assert first.status_code == 200
    assert first.text.count('class="top-image"') == 10
    assert "1–10 of 20 top images" in first.text and f'href="{permalink}?top_page=2#top-images-section"' in first.text
    second = tops.client.get(f"{permalink}?top_page=2")
    assert second.status_code == 200 and second.text.count('class="top-image"') == 10
    assert "11–20 of 20 top images" in second.text and "#11</span>" in second.text and "#20</span>" in second.text
    assert f'href="{permalink}#top-images-section"' in second.text  # back to page 1: the permalink itself
    neuron = neuron_json(tops, "layer1", 3)
    assert neuron["top_images"][10]["view_url"] in second.text
    assert neuron["top_images"][10]["heatmap_url"] in second.text


def test_a_top_page_past_the_last_is_404_with_the_pages_there_are(tops: TwentyTops) -> None:
    response = tops.client.get(f"/runs/{tops.run_id}/layers/layer1/neurons/3?top_page=3")
    assert response.status_code == 404
    assert "has 20 top images on 2 pages, so there is no top_page 3" in html.unescape(response.text)


def test_runs_stored_before_keep_their_crop_files(tops: TwentyTops) -> None:
    older = tops.dashboard.newer
    layer = older.layers[0].name
    neuron = neuron_json_for(tops, older.run_id, layer, 0)
    crop_url = neuron["top_images"][0]["crop_url"]
    assert crop_url.startswith("/media/") and "/top/" not in crop_url  # the file written when it was stored
    assert tops.client.get(crop_url).status_code == 200
    # The stable URL serves the same file too.
    stable = tops.client.get(top_media_url(older.run_id, layer, 0, neuron["top_images"][0]["rank"], "crop"))
    assert stable.status_code == 200 and stable.content == tops.client.get(crop_url).content


def neuron_json_for(tops: TwentyTops, run_id: int, layer: str, unit: int) -> dict:
    response = tops.client.get(f"/api/v1/runs/{run_id}/layers/{layer}/neurons/{unit}")
    assert response.status_code == 200, response.text
    return response.json()
