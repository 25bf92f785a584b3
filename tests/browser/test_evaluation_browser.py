"""A graded run in headless Chromium: the grade with its reasons on cards and the neuron page, the null chart, the
grade filter and the "polysemantic units first" sort, the run overview with its random baseline and the warning for
a typed concept the encoder cannot place, in light and dark, on a desktop and a 390 px phone; screenshots land in
tests/browser/screenshots/."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from dissect_core.analysis.label_free import layer_label_free_scores
from tests.browser.conftest import SCREENSHOTS, LiveServer, wait_for
from tests.support.dashboard_seed import (
    RELIABLE_MIN_R,
    SIGNIFICANT_MIN_R,
    LayerSpec,
    SeededRun,
    add_coverage_artifacts,
    image_embeddings,
    seed_run,
    seeded_r,
    top_indices,
)

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True}
#: WCAG AA for normal text: the grades are small text.
MIN_CONTRAST = 4.5
EXPLAINS = max(range(64), key=lambda unit: seeded_r(0, unit))
WEAK = next(unit for unit in range(64) if SIGNIFICANT_MIN_R <= seeded_r(0, unit) < RELIABLE_MIN_R)
NO_LABEL = next(unit for unit in range(64) if seeded_r(0, unit) < SIGNIFICANT_MIN_R)


@pytest.fixture(scope="module")
def evaluated(live_server: LiveServer) -> SeededRun:
    """A graded run of `evalnet` (with what typed concepts' coverage needs), beside the live server's older runs."""
    dashboard = live_server.dashboard
    layers = (LayerSpec("conv1", "conv", 64), LayerSpec("fc", "linear", 10))
    seeded = seed_run(dashboard.engine, dashboard.settings, model_name="evalnet", layers=layers, evaluated=True)
    add_coverage_artifacts(seeded)
    return seeded


def save(driver: Any, name: str) -> Path:
    """Save a full-page PNG of the current page to tests/browser/screenshots/NAME.png (beyond the window)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    path = SCREENSHOTS / f"{name}.png"
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


#: The colour an element's text is drawn in and the first opaque background behind it.
COLOURS_SCRIPT = """
const element = arguments[0];
let node = element, background = null;
while (node && node.nodeType === 1) {
  const colour = getComputedStyle(node).backgroundColor;
  if (colour && colour !== 'transparent' && !colour.startsWith('rgba(0, 0, 0, 0')) { background = colour; break; }
  node = node.parentElement;
}
return [getComputedStyle(element).color, background || getComputedStyle(document.documentElement).backgroundColor];
"""


def contrast(driver: Any, element: Any) -> float:
    """Return the WCAG contrast ratio of an element's text against the background behind it."""

    def luminance(colour: tuple[int, int, int]) -> float:
        linear = [c / 255 / 12.92 if c / 255 <= 0.04045 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in colour]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    text, background = (luminance(rgb(colour)) for colour in driver.execute_script(COLOURS_SCRIPT, element))
    light, dark = max(text, background), min(text, background)
    return (light + 0.05) / (dark + 0.05)


def readable(driver: Any, element: Any, what: str) -> None:
    """Fail unless the element's text stands out from its background by MIN_CONTRAST."""
    ratio = contrast(driver, element)
    assert ratio >= MIN_CONTRAST, f"{what} has contrast {ratio:.2f} against its background (needs {MIN_CONTRAST})"


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_neuron_page_shows_the_grade_and_its_reasons(
    browser: Any, live_server: LiveServer, evaluated: SeededRun, scheme: str
) -> None:
    from selenium.webdriver.common.by import By

    base = f"{live_server.url}/runs/{evaluated.run_id}/layers/conv1/neurons"
    colour_scheme(browser, scheme)
    try:
        browser.get(f"{base}/{EXPLAINS}")
        panel = browser.find_element(By.ID, "evaluation")
        assert "4 of 5 folds chose this label" in panel.text and "explains" in panel.text
        reasons = [item.text for item in browser.find_elements(By.CSS_SELECTOR, "#verdict-reasons li")]
        assert len(reasons) == 4 and reasons[-1] == "significant at 5% FDR" and "of the variance" in reasons[0]
        header_grade = browser.find_element(By.CSS_SELECTOR, "#label-r .grade")
        assert header_grade.text == "explains" and "chosen by 4 of 5 folds" in header_grade.get_attribute("title")
        readable(browser, header_grade, "the explains grade")
        readable(browser, browser.find_element(By.CSS_SELECTOR, "#verdict-reasons li"), "a reason")
        chart = browser.find_element(By.CSS_SELECTOR, "svg.null-chart")
        assert chart.is_displayed() and chart.size["width"] > 250
        curve = browser.find_element(By.CSS_SELECTOR, "svg.null-chart .curve")
        text_colour = rgb(browser.execute_script("return getComputedStyle(document.body).color"))
        assert rgb(curve.value_of_css_property("stroke")) == text_colour  # readable on either background
        assert len(browser.find_elements(By.CSS_SELECTOR, "#explanation tbody tr")) == 3
        save(browser, f"neuron-explains-{scheme}")

        browser.get(f"{base}/{WEAK}")
        weak = browser.find_element(By.CSS_SELECTOR, "#label-r .grade")
        assert weak.text == "weak" and browser.find_element(By.TAG_NAME, "h1").text != "no label"
        readable(browser, weak, "the weak grade")
        assert any(
            "below the floor" in item.text for item in browser.find_elements(By.CSS_SELECTOR, "#verdict-reasons li")
        )
        save(browser, f"neuron-weak-{scheme}")

        browser.get(f"{base}/{NO_LABEL}")
        assert browser.find_element(By.TAG_NAME, "h1").text == "no label"
        readable(browser, browser.find_element(By.CSS_SELECTOR, "#label-r .grade"), "the no-label grade")
        save(browser, f"neuron-no-label-{scheme}")
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_layer_grid_grades_cards_filters_by_grade_and_sorts_polysemantic_units_first(
    browser: Any, live_server: LiveServer, evaluated: SeededRun, scheme: str
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    layer = f"{live_server.url}/runs/{evaluated.run_id}/layers/conv1"
    colour_scheme(browser, scheme)
    try:
        browser.get(f"{layer}?sort=-r")
        muted = browser.find_element(By.ID, f"unit-{NO_LABEL}")
        assert "no label" in muted.text and "unreliable" in muted.get_attribute("class")
        weak = browser.find_element(By.ID, f"unit-{WEAK}")
        assert "weak" in weak.text and "below the floor" in weak.get_attribute("title")
        good = browser.find_element(By.ID, f"unit-{EXPLAINS}")
        readable(browser, good.find_element(By.CSS_SELECTOR, ".grade"), "a card's explains grade")
        readable(browser, weak.find_element(By.CSS_SELECTOR, ".grade"), "a card's weak grade")
        save(browser, f"layer-graded-{scheme}")

        browser.find_element(By.ID, "grid-reliable").click()
        wait_for(lambda: "reliable=true" in browser.current_url, message="the explains filter in the URL")
        wait_for(
            lambda: (
                {card.text.split("\n")[0] for card in browser.find_elements(By.CSS_SELECTOR, "#grid .grade")}
                == {"explains"}
            ),
            message="only top-grade cards",
        )

        browser.get(layer)
        Select(browser.find_element(By.ID, "grid-verdict")).select_by_value("weak")
        wait_for(lambda: "verdict=weak" in browser.current_url, message="the grade filter in the URL")
        grades = wait_for(
            lambda: {grade.text for grade in browser.find_elements(By.CSS_SELECTOR, "#grid .card .grade")} == {"weak"},
            message="only weak cards",
        )
        assert grades

        polysemanticity = layer_label_free_scores(image_embeddings(), top_indices(64)).polysemanticity
        most = {unit for unit in range(64) if float(polysemanticity[unit]) >= float(polysemanticity.max()) - 1e-6}
        browser.get(layer)
        Select(browser.find_element(By.ID, "grid-sort")).select_by_value("-polysemanticity")
        wait_for(lambda: "sort=-polysemanticity" in browser.current_url, message="the sort in the URL")
        first = wait_for(
            lambda: int(browser.find_element(By.CSS_SELECTOR, "#grid .card").get_attribute("id").split("-")[1]) in most,
            message="the most polysemantic unit first",
        )
        assert first
        save(browser, f"layer-polysemantic-{scheme}")

        browser.get(f"{live_server.url}/runs/{evaluated.run_id}")
        assert len(browser.find_elements(By.CSS_SELECTOR, "#layer-overview svg.r-histogram")) == 2
        assert len(browser.find_elements(By.CSS_SELECTOR, "#layer-overview .baseline")) == 2
        for grade in browser.find_elements(By.CSS_SELECTOR, "#layer-overview .grade"):
            readable(browser, grade, "a grade count")
        save(browser, f"run-overview-{scheme}")
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_a_typed_concept_the_encoder_cannot_place_gets_a_warning(
    browser: Any, live_server: LiveServer, evaluated: SeededRun, scheme: str
) -> None:
    from selenium.webdriver.common.by import By

    colour_scheme(browser, scheme)
    try:
        browser.get(f"{live_server.url}/runs/{evaluated.run_id}/layers/conv1")
        browser.find_element(By.ID, "concept-q").send_keys("purple")
        warning = wait_for(lambda: browser.find_elements(By.ID, "concept-warning"), message="the warning")[0]
        assert "does not recognise 'purple'" in warning.text and warning.is_displayed()
        readable(browser, warning, "the encoder-blind warning")
        ranking = browser.find_element(By.CSS_SELECTOR, "#concept-results details.blind-ranking")
        assert ranking.get_attribute("open") is None  # folded: the ranking is the encoder's noise
        save(browser, f"concept-blind-{scheme}")
        field = browser.find_element(By.ID, "concept-q")
        field.clear()
        field.send_keys("striped")
        wait_for(
            lambda: (
                browser.find_elements(By.CSS_SELECTOR, "#concept-results ol.ranked li")
                and not browser.find_elements(By.ID, "concept-warning")
            ),
            message="a ranking without a warning",
        )
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_graded_pages_fit_a_phone_screen(
    browser: Any, live_server: LiveServer, evaluated: SeededRun, scheme: str
) -> None:
    from selenium.webdriver.common.by import By

    base = f"/runs/{evaluated.run_id}"
    pages = {
        "run": base,
        "layer": f"{base}/layers/conv1?sort=-polysemanticity",
        "layer-weak": f"{base}/layers/conv1?verdict=weak",
        "neuron": f"{base}/layers/conv1/neurons/{EXPLAINS}",
        "neuron-weak": f"{base}/layers/conv1/neurons/{WEAK}",
        "neuron-no-label": f"{base}/layers/conv1/neurons/{NO_LABEL}",
    }
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
    colour_scheme(browser, scheme)
    try:
        for name, path in pages.items():
            browser.get(live_server.url + path)
            save(browser, f"phone-graded-{name}-{scheme}")
            overflow = browser.execute_script(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 1, f"{path} is {overflow} px wider than a 390 px screen"
        browser.get(f"{live_server.url}{base}/layers/conv1")
        browser.find_element(By.ID, "concept-q").send_keys("purple")
        wait_for(lambda: browser.find_elements(By.ID, "concept-warning"), message="the warning")
        save(browser, f"phone-graded-concept-blind-{scheme}")
        overflow = browser.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 1, f"the warning makes the layer page {overflow} px wider than a 390 px screen"
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
