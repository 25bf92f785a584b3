"""Connections, class pages and "why this prediction" in headless Chromium: the neuron page's Inputs / Outputs panel
loads and links units and classes; the class list, a class page and the image page's prediction block in light,
dark and at 390 px (no sideways scrolling), with screenshots."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.browser.conftest import SCREENSHOTS, LiveServer, start_server
from tests.browser.test_dashboard_browser import wait_for
from tests.support.dashboard_seed import build_dashboard
from tests.support.image_activations import write_activations
from tests.support.wiring_seed import STRONG_UNIT, write_wiring

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def wiring_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server over seeded runs whose newer run keeps activations, outputs, connections and class names."""
    dashboard = build_dashboard(tmp_path_factory.mktemp("wiring-browser") / "data")
    write_activations(dashboard.newer)
    write_wiring(dashboard.newer, dashboard.engine)
    server = start_server(dashboard)
    yield server
    server.stop()
    dashboard.engine.dispose()


@pytest.fixture(scope="module")
def driver(new_browser: Callable[[], Any]) -> Any:
    """A fresh Chromium for these flows."""
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
    """Open `url` in light, dark and at 390 px, wait for `ready` each time, and save the three screenshots."""
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


def test_the_neuron_page_loads_its_inputs_and_outputs_and_links_a_class(driver: Any, wiring_server: LiveServer) -> None:
    from selenium.webdriver.common.by import By

    run_id = wiring_server.dashboard.newer.run_id
    url = f"{wiring_server.url}/runs/{run_id}/layers/blocks.3/neurons/{STRONG_UNIT}"
    _shoot(driver, url, "connections_panel", "#connection-outputs")
    driver.get(url)
    link = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#connection-outputs a.class-link"), message="class")
    assert link[0].text == "wheel"  # class 9 has the largest weight
    assert "n=32" in driver.find_element(By.ID, "connection-inputs").text
    link[0].click()
    wait_for(lambda: driver.current_url.endswith(f"/runs/{run_id}/classes/9"), message="the class page")
    assert driver.find_element(By.ID, "class-name").text == "wheel"


def test_the_class_list_and_a_class_page(driver: Any, wiring_server: LiveServer) -> None:
    run_id = wiring_server.dashboard.newer.run_id
    _shoot(driver, f"{wiring_server.url}/runs/{run_id}/classes", "class_list", "#class-list")
    _shoot(driver, f"{wiring_server.url}/runs/{run_id}/classes/2", "class_page", "#class-units")


def test_the_image_page_explains_its_prediction(driver: Any, wiring_server: LiveServer) -> None:
    run_id = wiring_server.dashboard.newer.run_id
    _shoot(driver, f"{wiring_server.url}/runs/{run_id}/images/13", "image_prediction", "#prediction-units")


def test_the_run_page_draws_the_weight_finding(driver: Any, wiring_server: LiveServer) -> None:
    run_id = wiring_server.dashboard.newer.run_id
    _shoot(driver, f"{wiring_server.url}/runs/{run_id}", "run_weight_finding", ".agreement-chart")
