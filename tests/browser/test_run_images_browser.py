"""Your own image (#23) in headless Chromium over seeded data: an uploaded image's page (the prediction, the units
that fire unusually, per layer the units it drives most) in light, dark and at 390 px with no sideways scrolling; the
run page's panel with the upload form for editors only; and a queued image's page that updates itself once its
reading is stored. The worker's part is covered by tests/integration/test_run_images.py; readings here are seeded
from the constructed activations of tests/support/image_activations.py."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from PIL import Image

from app.jobs.queue.jobs import enqueue
from app.persistence.db import write_session
from app.persistence.media import MediaStore
from app.persistence.models import JobState, RunImage, utcnow
from dissect_core.interventions.single_image import unit_percentiles
from tests.browser.conftest import SCREENSHOTS, LiveServer, start_server
from tests.browser.test_dashboard_browser import wait_for
from tests.support.dashboard_seed import N_IMAGES, SeededRun, build_dashboard
from tests.support.image_activations import IMAGE, constructed_activations, rare_units, write_activations

pytestmark = pytest.mark.browser
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def seeded_reading(run: SeededRun) -> dict[str, Any]:
    """Return a reading as the worker stores it: the probe image IMAGE's activations (its rare units fire above every
    other probe image), a prediction of "cat"."""
    layers = {}
    for seed, layer in enumerate(run.layers):
        probe = constructed_activations(layer.n_units, seed)
        activation = probe[IMAGE]
        layers[layer.name] = {
            "activations": activation.tolist(),
            "percentiles": unit_percentiles(activation, probe).tolist(),
        }
    probabilities = (0.62, 0.21, 0.09, 0.05, 0.03)
    prediction = [
        {"class_index": index, "class_name": CLASSES[index], "probability": probability}
        for index, probability in zip((3, 5, 2, 4, 0), probabilities, strict=True)
    ]
    return {"prediction": prediction, "why": None, "layers": layers, "n_probe_images": N_IMAGES, "device": "cpu"}


def seed_image(server: LiveServer, seed: int, *, read: bool) -> int:
    """Store an uploaded image of the newer run (read, or queued with a job); return its id."""
    dashboard = server.dashboard
    buffer = io.BytesIO()
    Image.new("RGB", (160, 120), (40 + seed * 30, 120, 200)).save(buffer, format="PNG")
    file = MediaStore(dashboard.settings.media_dir).put(buffer.getvalue(), ".png")
    with write_session(dashboard.engine) as session:
        job = None if read else enqueue(session, {"run_id": dashboard.newer.run_id, "seed": seed}, "image")
        row = RunImage(
            run_id=dashboard.newer.run_id, file=file, sha256=f"{seed:064d}", width=160, height=120,
            status=JobState.SUCCEEDED.value if read else JobState.QUEUED.value,
            job_id=None if job is None else job.id,
            result=seeded_reading(dashboard.newer) if read else None, finished_at=utcnow() if read else None,
        )  # fmt: skip
        session.add(row)
        session.flush()
        return row.id


def store_reading(server: LiveServer, image_id: int) -> None:
    """Store the seeded reading of a queued image as its job would."""
    with write_session(server.dashboard.engine) as session:
        row = session.get(RunImage, image_id)
        assert row is not None
        row.result, row.status, row.finished_at = (
            seeded_reading(server.dashboard.newer), JobState.SUCCEEDED.value, utcnow()
        )  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server over seeded runs whose newer run keeps (constructed) activations."""
    dashboard = build_dashboard(tmp_path_factory.mktemp("run-images-browser") / "data")
    write_activations(dashboard.newer)
    live = start_server(dashboard)
    yield live
    live.stop()
    dashboard.engine.dispose()


@pytest.fixture(scope="module")
def driver(new_browser: Callable[[], Any]) -> Any:
    """A fresh Chromium for these flows (anonymous until a test logs it in)."""
    return new_browser()


def _emulate(driver: Any, *, dark: bool, width: int | None = None) -> None:
    features = [{"name": "prefers-color-scheme", "value": "dark" if dark else "light"}]
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": features})
    if width is None:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        driver.set_window_size(1440, 1000)
    else:
        metrics = {"width": width, "height": 844, "deviceScaleFactor": 2, "mobile": True}
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
        driver.set_window_size(width, 1000)


def _shoot(driver: Any, url: str, name: str, ready: str) -> None:
    """Open `url` in light, dark and at 390 px (no sideways scrolling), wait for `ready`, save the screenshots."""
    from selenium.webdriver.common.by import By

    SCREENSHOTS.mkdir(exist_ok=True)
    for suffix, dark, width in (("light", False, None), ("dark", True, None), ("phone", False, 390)):
        _emulate(driver, dark=dark, width=width)
        driver.get(url)
        wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, ready), message=ready)
        if width is None:
            height = driver.execute_script("return Math.min(document.documentElement.scrollHeight, 3000)")
            driver.set_window_size(1440, max(900, int(height)))
        else:
            assert driver.execute_script("return document.documentElement.scrollWidth") <= width, name
        driver.save_screenshot(str(SCREENSHOTS / f"{name}_{suffix}.png"))
    _emulate(driver, dark=False)


def test_an_uploaded_images_page_shows_prediction_unusual_units_and_layers(driver: Any, server: LiveServer) -> None:
    from selenium.webdriver.common.by import By

    image_id = seed_image(server, 1, read=True)
    run = server.dashboard.newer
    _shoot(driver, f"{server.url}/runs/{run.run_id}/uploads/{image_id}", "run_image", "#unusual-units")
    assert driver.find_element(By.CSS_SELECTOR, "#prediction-classes tr.best").text.startswith("cat")
    rows = driver.find_elements(By.CSS_SELECTOR, "#unusual-units tbody tr td:first-child")
    rare = {f"{layer.name}/{unit}" for layer in run.layers for unit in rare_units(layer.n_units)}
    # The rare units (a lone peak on this image) come first, by z; then units whose noise happens to peak on it.
    assert {row.text for row in rows[: len(rare)]} == rare
    assert len(driver.find_elements(By.CSS_SELECTOR, ".image-layer")) == len(run.layers)
    assert not driver.find_elements(By.ID, "image-file")  # visitors get no upload form


def test_the_run_page_offers_editors_the_upload_form(driver: Any, server: LiveServer) -> None:
    from selenium.webdriver.common.by import By

    run_id = server.dashboard.newer.run_id
    driver.get(f"{server.url}/runs/{run_id}")
    panel = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#run-uploads .upload-list"), message="uploads")
    assert not driver.find_elements(By.ID, "image-file")
    driver.get(server.login_link(f"/runs/{run_id}"))
    wait_for(lambda: driver.find_elements(By.ID, "image-file"), message="the upload form")
    panel = driver.find_element(By.ID, "run-uploads")
    driver.execute_script("arguments[0].scrollIntoView()", panel)
    driver.save_screenshot(str(SCREENSHOTS / "run_uploads_editor.png"))


def test_a_queued_images_page_updates_itself_once_read(driver: Any, server: LiveServer) -> None:
    from selenium.webdriver.common.by import By

    image_id = seed_image(server, 2, read=False)
    driver.get(f"{server.url}/runs/{server.dashboard.newer.run_id}/uploads/{image_id}")
    result = wait_for(lambda: driver.find_elements(By.ID, "run-image-result"), message="the result")
    assert result[0].get_attribute("data-status") == "queued"
    _emulate(driver, dark=True)
    driver.save_screenshot(str(SCREENSHOTS / "run_image_queued_dark.png"))
    _emulate(driver, dark=False)
    store_reading(server, image_id)
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#unusual-units tbody tr"), message="the polled reading")
