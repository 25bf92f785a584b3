"""The image view in headless Chromium: a neuron page's thumbnail and a grid card's crop open it; light, dark and
phone-width screenshots, and no sideways scrolling at 390 px."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.browser.conftest import SCREENSHOTS, LiveServer, start_server
from tests.browser.test_dashboard_browser import wait_for
from tests.support.dashboard_seed import build_dashboard
from tests.support.image_activations import IMAGE, write_activations

pytestmark = pytest.mark.browser
LAYER = "blocks.3"


@pytest.fixture(scope="module")
def image_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server over seeded runs whose newer run keeps (constructed) activations."""
    dashboard = build_dashboard(tmp_path_factory.mktemp("image-browser") / "data")
    write_activations(dashboard.newer)
    server = start_server(dashboard)
    yield server
    server.stop()
    dashboard.engine.dispose()


@pytest.fixture(scope="module")
def driver(new_browser: Callable[[], Any]) -> Any:
    """A fresh Chromium for these flows."""
    return new_browser()


def test_a_neuron_page_thumbnail_opens_its_image_view(driver: Any, image_server: LiveServer) -> None:
    from selenium.webdriver.common.by import By

    run_id = image_server.dashboard.newer.run_id
    driver.get(f"{image_server.url}/runs/{run_id}/layers/{LAYER}/neurons/3")
    link = driver.find_elements(By.CSS_SELECTOR, ".top-image a[href*='/images/']")[0]
    target = link.get_attribute("href")
    link.click()
    wait_for(lambda: driver.current_url == target, message="the image view")
    assert "/images/" in driver.current_url
    assert driver.find_elements(By.CSS_SELECTOR, ".image-view img")
    assert len(driver.find_elements(By.CSS_SELECTOR, ".image-layer")) == 3


def test_a_grid_crop_opens_its_image_view(driver: Any, image_server: LiveServer) -> None:
    from selenium.webdriver.common.by import By

    run_id = image_server.dashboard.newer.run_id
    driver.get(f"{image_server.url}/runs/{run_id}/layers/{LAYER}")
    crop = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#grid .card-frame .crops a"), message="crop links")
    SCREENSHOTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / "image_view_grid_cards.png"))
    target = crop[0].get_attribute("href")
    crop[0].click()
    wait_for(lambda: driver.current_url == target, message="the crop's image view")
    # The card itself still opens its neuron.
    driver.back()
    card = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#grid a.card"), message="cards")
    card[0].click()
    wait_for(lambda: "/neurons/0" in driver.current_url, message="the card's neuron")


def _emulate(driver: Any, *, dark: bool, width: int | None = None) -> None:
    scheme = "dark" if dark else "light"
    features = [{"name": "prefers-color-scheme", "value": scheme}]
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": features})
    if width is None:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    else:
        metrics = {"width": width, "height": 844, "deviceScaleFactor": 2, "mobile": True}
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)


def test_the_image_view_in_light_dark_and_at_phone_width(driver: Any, image_server: LiveServer) -> None:
    from selenium.webdriver.common.by import By

    run_id = image_server.dashboard.newer.run_id
    url = f"{image_server.url}/runs/{run_id}/images/{IMAGE}"
    SCREENSHOTS.mkdir(exist_ok=True)
    for name, dark in (("image_view_light", False), ("image_view_dark", True)):
        _emulate(driver, dark=dark)
        driver.set_window_size(1440, 1000)
        driver.get(url)
        height = driver.execute_script("return Math.min(document.documentElement.scrollHeight, 4000)")
        driver.set_window_size(1440, max(900, int(height)))
        driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
    background = driver.execute_script("return getComputedStyle(document.body).backgroundColor")
    assert background != "rgb(246, 247, 249)"  # the dark palette, not the light one
    _emulate(driver, dark=False, width=390)
    driver.set_window_size(390, 1000)
    driver.get(url)
    assert driver.execute_script("return document.documentElement.scrollWidth") <= 390
    assert driver.find_element(By.CSS_SELECTOR, ".image-view img").size["width"] <= 390
    driver.save_screenshot(str(SCREENSHOTS / "image_view_phone.png"))
    _emulate(driver, dark=False)
