"""An evaluated run in headless Chromium: the neuron page's explanation and null chart, the muted cards and the run
overview, in light and dark, on a desktop and a phone; screenshots land in /tmp/shots/."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import LiveServer
from tests.browser.test_dashboard_browser import wait_for
from tests.support.dashboard_seed import RELIABLE_MIN_R, LayerSpec, SeededRun, seed_run, seeded_r

pytestmark = pytest.mark.browser
SHOTS = Path("/tmp/shots")
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True}


@pytest.fixture(scope="module")
def evaluated(live_server: LiveServer) -> SeededRun:
    """A run of `evalnet` with evaluations, stored beside the live server's runs without."""
    dashboard = live_server.dashboard
    layers = (LayerSpec("conv1", "conv", 64), LayerSpec("fc", "linear", 10))
    return seed_run(dashboard.engine, dashboard.settings, model_name="evalnet", layers=layers, evaluated=True)


def save(driver: Any, name: str) -> Path:
    """Save a full-page PNG of the current page to /tmp/shots/NAME.png (beyond the window, as Chromium lays it out)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    path = SHOTS / f"{name}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def colour_scheme(driver: Any, scheme: str) -> None:
    """Emulate the system's light or dark setting."""
    driver.execute_cdp_cmd(
        "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": scheme}]}
    )


def rgb(css_colour: str) -> tuple[int, int, int]:
    red, green, blue = (int(float(part)) for part in css_colour[css_colour.index("(") + 1 : -1].split(",")[:3])
    return red, green, blue


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_a_neuron_page_with_its_evaluation(
    browser: Any, live_server: LiveServer, evaluated: SeededRun, scheme: str
) -> None:
    from selenium.webdriver.common.by import By

    reliable = max(range(64), key=lambda unit: seeded_r(0, unit))
    unreliable = next(unit for unit in range(64) if seeded_r(0, unit) < RELIABLE_MIN_R)
    base = f"{live_server.url}/runs/{evaluated.run_id}"
    colour_scheme(browser, scheme)
    try:
        browser.get(f"{base}/layers/conv1/neurons/{reliable}")
        panel = browser.find_element(By.ID, "evaluation")
        assert seeded_r(0, reliable) >= RELIABLE_MIN_R
        assert "4 of 5 folds chose this label" in panel.text and "yes" in panel.text
        chart = browser.find_element(By.CSS_SELECTOR, "svg.null-chart")
        assert chart.is_displayed() and chart.size["width"] > 250
        curve = browser.find_element(By.CSS_SELECTOR, "svg.null-chart .curve")
        text_colour = rgb(browser.execute_script("return getComputedStyle(document.body).color"))
        stroke = rgb(curve.value_of_css_property("stroke"))
        assert stroke == text_colour  # the curve follows the scheme's text colour, readable on either background
        assert len(browser.find_elements(By.CSS_SELECTOR, "#explanation tbody tr")) == 3
        save(browser, f"neuron-evaluated-{scheme}")

        browser.get(f"{base}/layers/conv1/neurons/{unreliable}")
        assert browser.find_element(By.TAG_NAME, "h1").text == "no reliable label"
        save(browser, f"neuron-unreliable-{scheme}")
        browser.get(f"{base}/layers/conv1?sort=-r")
        muted = browser.find_element(By.ID, f"unit-{unreliable}")
        assert "no reliable label" in muted.text and "unreliable" in muted.get_attribute("class")
        save(browser, f"layer-evaluated-{scheme}")
        browser.find_element(By.ID, "grid-reliable").click()
        wait_for(lambda: "reliable=true" in browser.current_url, message="the reliable filter in the URL")
        wait_for(
            lambda: "no reliable label" not in browser.find_element(By.ID, "grid").text, message="unreliable cards gone"
        )
        browser.get(base)
        assert len(browser.find_elements(By.CSS_SELECTOR, "#layer-overview svg.r-histogram")) == 2
        save(browser, f"run-overview-{scheme}")
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})


def test_evaluated_pages_fit_a_phone_screen(browser: Any, live_server: LiveServer, evaluated: SeededRun) -> None:
    base = f"/runs/{evaluated.run_id}"
    pages = {"run": base, "layer": f"{base}/layers/conv1?sort=-r", "neuron": f"{base}/layers/conv1/neurons/2"}
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
    try:
        for name, path in pages.items():
            browser.get(live_server.url + path)
            overflow = browser.execute_script(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            SHOTS.mkdir(parents=True, exist_ok=True)
            browser.save_screenshot(str(SHOTS / f"phone-evaluated-{name}.png"))
            assert overflow <= 1, f"{path} is {overflow} px wider than a 390 px screen"
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
