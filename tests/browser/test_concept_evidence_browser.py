"""Concept evidence in a real browser: the label's evidence loads by itself, a typed concept brings its own, and
the panel reads well in light and dark mode and at phone width."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch

from app.persistence.store.artifacts import save_layer, save_run_tensors
from app.persistence.store.layout import ArtifactsLayout
from tests.browser.conftest import SCREENSHOTS, LiveServer, start_server
from tests.support.dashboard_seed import N_IMAGES, build_dashboard

SCREENS = SCREENSHOTS
FIRING = (3, 11, 19, 27, 35, 40, 41, 42)


@pytest.fixture(scope="module")
def evidence_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server over seeded data whose newer run keeps conv1's activations and each image's carry bar."""
    dashboard = build_dashboard(tmp_path_factory.mktemp("evidence-browser") / "data")
    layout = ArtifactsLayout(dashboard.newer.artifacts_dir)
    activations = torch.rand(N_IMAGES, 64, generator=torch.Generator().manual_seed(2))
    activations[list(FIRING), 3] = 10.0
    save_layer(layout, "conv1", activations=activations)
    save_run_tensors(layout, carry_cosines=torch.full((N_IMAGES,), 0.7))
    server = start_server(dashboard)
    yield server
    server.stop()
    dashboard.engine.dispose()


@pytest.fixture(scope="module")
def driver(new_browser: Callable[[], Any], evidence_server: LiveServer) -> Any:
    """A headless Chromium on the evidence server."""
    session = new_browser()
    session.get(evidence_server.login_link())
    return session


def wait_for(driver: Any, script: str, timeout: float = 10) -> Any:
    """Return the script's value once truthy (polling), or fail."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(lambda d: d.execute_script(script))


def save_panel(driver: Any, name: str) -> None:
    """Save a screenshot of the window, scrolled to the evidence panel, under tests/browser/screenshots."""
    SCREENS.mkdir(parents=True, exist_ok=True)
    driver.execute_script(
        "const top = document.getElementById('label-evidence-panel').getBoundingClientRect().top;"
        "window.scrollBy(0, top - 60)"
    )
    driver.save_screenshot(str(SCREENS / f"{name}.png"))


def test_the_labels_evidence_loads_and_a_typed_concept_brings_its_own(driver: Any, evidence_server: LiveServer) -> None:
    run_id = evidence_server.dashboard.newer.run_id
    driver.set_window_size(1440, 1700)
    driver.get(f"{evidence_server.url}/runs/{run_id}/layers/conv1/neurons/3")
    wait_for(driver, "return document.querySelectorAll('#label-evidence .evidence-image').length === 12")
    assert driver.execute_script("return document.querySelectorAll('#label-evidence .verdict.hit').length") == 5
    summary = driver.execute_script("return document.querySelector('#label-evidence .evidence-summary').innerText")
    assert "5 of 12 top images for “striped” make this neuron fire" in summary
    box = driver.find_element("id", "neuron-concept-q")
    box.send_keys("wheel")
    wait_for(driver, "return document.querySelectorAll('#neuron-concept .evidence-image').length === 12")
    assert driver.execute_script("return document.querySelectorAll('#neuron-concept .verdict.hit').length") == 0
    save_panel(driver, "concept_evidence_light")
    driver.execute_cdp_cmd(
        "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]}
    )
    try:
        save_panel(driver, "concept_evidence_dark")
    finally:
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})


def test_the_evidence_panel_fits_a_phone(driver: Any, evidence_server: LiveServer) -> None:
    run_id = evidence_server.dashboard.newer.run_id
    phone = {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", phone)
    try:
        driver.get(f"{evidence_server.url}/runs/{run_id}/layers/conv1/neurons/3")
        wait_for(driver, "return document.querySelectorAll('#label-evidence .evidence-image').length === 12")
        right = driver.execute_script(
            "return document.getElementById('label-evidence-panel').getBoundingClientRect().right"
        )
        assert right <= 390
        save_panel(driver, "concept_evidence_phone")
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
