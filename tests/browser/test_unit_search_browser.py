"""Which units detect X? in headless Chromium: the one search box's page (label hits by word form, the concept
ranked over every layer, crops, r and grades), the concept carried to a unit's page and back, and the run page's
"what it found" with a classifier's class names; in light and dark, on a desktop and a 390 px phone. Screenshots
land in tests/browser/screenshots/."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import LiveServer, wait_for
from tests.browser.test_evaluation_browser import PHONE, colour_scheme, readable, save
from tests.support.dashboard_seed import SeededRun, add_coverage_artifacts, seed_run
from tests.support.search_seed import SEARCH_LAYERS, STRIPES, name_classes, relabel

pytestmark = pytest.mark.browser
VIEWS = [("light", None), ("dark", None), ("light", PHONE), ("dark", PHONE)]
IMAGES_LOADED = (
    "return [...arguments[0].querySelectorAll('img')].every(image => image.complete && image.naturalWidth > 0)"
)


@pytest.fixture(scope="module")
def searchable(live_server: LiveServer) -> SeededRun:
    """A graded run of `searchnet` with "stripes" labels in blocks.3 and named classes on fc."""
    dashboard = live_server.dashboard
    seeded = seed_run(
        dashboard.engine, dashboard.settings, model_name="searchnet", layers=SEARCH_LAYERS, evaluated=True
    )
    add_coverage_artifacts(seeded)
    relabel(dashboard, seeded, *STRIPES)
    name_classes(dashboard, seeded)
    return seeded


def view(browser: Any, scheme: str, metrics: dict[str, object] | None) -> str:
    """Emulate the colour scheme and (for a phone) the screen; return the view's name for screenshots."""
    colour_scheme(browser, scheme)
    if metrics:
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    return f"{scheme}{'-phone' if metrics else ''}"


def reset(browser: Any) -> None:
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def no_sideways_scroll(browser: Any, what: str) -> None:
    overflow = browser.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{what} scrolls sideways by {overflow} px"


@pytest.mark.parametrize(("scheme", "metrics"), VIEWS)
def test_the_search_page_shows_hits_and_the_ranking(
    browser: Any, live_server: LiveServer, searchable: SeededRun, scheme: str, metrics: dict[str, object] | None
) -> None:
    from selenium.webdriver.common.by import By

    name = view(browser, scheme, metrics)
    try:
        browser.get(f"{live_server.url}/runs/{searchable.run_id}/search?q=stripe")
        hits = browser.find_element(By.ID, "label-hit-table")
        rows = hits.find_elements(By.CSS_SELECTOR, "tbody tr")
        labels = {row.find_element(By.CSS_SELECTOR, "td:nth-child(3) a").text for row in rows}
        assert labels == {"stripes", "striped"}  # each found by a word form of "stripe"
        assert "striped" in browser.find_element(By.CSS_SELECTOR, "#label-hits h2").text
        ranking = browser.find_element(By.ID, "ranking-table")
        assert len(ranking.find_elements(By.CSS_SELECTOR, "tbody tr")) == 24
        best = ranking.find_element(By.CSS_SELECTOR, "tbody tr")
        browser.execute_script("arguments[0].scrollIntoView()", best)  # the crops load lazily
        wait_for(lambda: browser.execute_script(IMAGES_LOADED, best), message="the best ranked unit's crops")
        browser.execute_script("window.scrollTo(0, 0)")
        readable(browser, ranking.find_element(By.CSS_SELECTOR, ".grade"), "a ranked unit's grade")
        if metrics:
            no_sideways_scroll(browser, "the search page")
        save(browser, f"search-{name}")

        browser.get(f"{live_server.url}/runs/{searchable.run_id}/search?q=purple")
        warning = browser.find_element(By.ID, "coverage-warning")
        assert "does not recognise" in warning.text and warning.is_displayed()
        readable(browser, warning, "the coverage warning")
        save(browser, f"search-blind-{name}")
    finally:
        reset(browser)


def test_the_concept_carries_into_a_units_page_and_back(
    browser: Any, live_server: LiveServer, searchable: SeededRun
) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{live_server.url}/runs/{searchable.run_id}/search?q=striped")
    first = browser.find_element(By.CSS_SELECTOR, "#ranking-table tbody tr td:nth-child(2) a")
    first.click()
    wait_for(lambda: "concept=striped" in browser.current_url, message="the unit's page with the concept")
    assert browser.find_element(By.ID, "neuron-concept-q").get_attribute("value") == "striped"
    wait_for(lambda: "this neuron ranks" in browser.find_element(By.ID, "neuron-concept").text, message="the score")
    browser.find_element(By.CSS_SELECTOR, "#concept-back a").click()
    wait_for(lambda: browser.current_url.endswith("/search?q=striped"), message="back at the search")


@pytest.mark.parametrize(("scheme", "metrics"), VIEWS)
def test_the_run_page_shows_what_it_found(
    browser: Any, live_server: LiveServer, searchable: SeededRun, scheme: str, metrics: dict[str, object] | None
) -> None:
    from selenium.webdriver.common.by import By

    name = view(browser, scheme, metrics)
    try:
        browser.get(f"{live_server.url}/runs/{searchable.run_id}")
        assert "How to read this page" in browser.find_element(By.ID, "how-to-read").text
        findings = browser.find_elements(By.CSS_SELECTOR, "#run-findings .finding")
        assert len(findings) == len(SEARCH_LAYERS)
        for finding in findings:
            assert len(finding.find_elements(By.CSS_SELECTOR, ".best-unit")) == 4
            assert finding.find_elements(By.CSS_SELECTOR, ".common-labels .chip")
        assert "class · " in findings[-1].text  # the final layer's units are classes
        wait_for(lambda: browser.execute_script(IMAGES_LOADED, findings[0]), message="the best units' crops")
        for grade in browser.find_elements(By.CSS_SELECTOR, "#run-findings .grade")[:4]:
            readable(browser, grade, "a best unit's grade")
        search = browser.find_element(By.CSS_SELECTOR, "#run-search input[type=search]")
        assert search.is_displayed()
        if metrics:
            no_sideways_scroll(browser, "the run page")
        save(browser, f"run-findings-{name}")
    finally:
        reset(browser)
