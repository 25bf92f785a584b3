"""Flows in headless Chromium against a real uvicorn: browse, permalink, concept search, upload and watch a job."""

from __future__ import annotations

import io
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.jobs.dissections import StoredDissection
from app.jobs.queue.worker import run_worker
from app.persistence.models import CatalogProbeSet, Job
from tests.browser.conftest import SCREENSHOTS, LiveServer, wait_for
from tests.support.dashboard_seed import LayerSpec, TinyNet, seed_run

pytestmark = pytest.mark.browser
LAYER = "blocks.3"


def cards(driver: Any) -> list[Any]:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, "#grid a.card")


def test_browse_a_layer_filter_and_load_more(browser: Any, live_server: LiveServer, screenshot: Callable) -> None:
    from selenium.webdriver.common.by import By

    run_id = live_server.dashboard.newer.run_id
    browser.get(live_server.url + "/")
    screenshot(browser, "home")
    browser.find_element(By.LINK_TEXT, f"#{run_id}").click()
    wait_for(lambda: "Layers" in browser.page_source, message="the run page")
    screenshot(browser, "run")
    browser.find_element(By.LINK_TEXT, LAYER).click()
    wait_for(lambda: len(cards(browser)) == 96, message="96 cards")
    assert browser.current_url.endswith(f"/runs/{run_id}/layers/{LAYER}")
    screenshot(browser, "layer")

    browser.find_element(By.CSS_SELECTOR, "button.load-more").click()
    wait_for(lambda: len(cards(browser)) == 192, message="the second page appended")
    assert browser.current_url.endswith("?page=2&start=1")

    box = browser.find_element(By.ID, "grid-q")
    box.send_keys("wheel")
    wait_for(lambda: "q=wheel" in browser.current_url, message="the filter in the URL")
    wait_for(lambda: cards(browser) and all("wheel" in card.text for card in cards(browser)), message="filtered")
    assert "256" in browser.find_element(By.CSS_SELECTOR, "#grid .count").text
    screenshot(browser, "layer-filtered")


def test_open_a_neuron_and_step_with_the_keyboard(browser: Any, live_server: LiveServer, screenshot: Callable) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    run_id = live_server.dashboard.newer.run_id
    browser.get(f"{live_server.url}/runs/{run_id}/layers/{LAYER}")
    cards(browser)[3].click()
    wait_for(lambda: browser.current_url.endswith(f"/layers/{LAYER}/neurons/3"), message="the neuron page")
    assert browser.find_element(By.TAG_NAME, "h1").text == "striped"
    assert len(browser.find_elements(By.CSS_SELECTOR, ".top-image .box")) == 5
    heatmap = browser.find_elements(By.CSS_SELECTOR, ".top-image .heatmap")[0]
    assert not heatmap.is_displayed()
    browser.find_element(By.ID, "heatmap-toggle").click()
    assert heatmap.is_displayed()
    screenshot(browser, "neuron")
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ARROW_RIGHT)
    wait_for(lambda: browser.current_url.endswith("/neurons/4"), message="the next neuron after →")
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ARROW_LEFT)
    wait_for(lambda: browser.current_url.endswith("/neurons/3"), message="the previous neuron after ←")


def test_permalink_opens_in_a_fresh_browser(new_browser: Callable[[], Any], live_server: LiveServer) -> None:
    from selenium.webdriver.common.by import By

    fresh = new_browser()
    fresh.get(f"{live_server.url}/models/tinynet/layers/{LAYER}/neurons/11")
    wait_for(lambda: "/neurons/11" in fresh.current_url, message="the permalink")
    assert fresh.current_url == f"{live_server.url}/runs/{live_server.dashboard.newer.run_id}/layers/{LAYER}/neurons/11"
    assert fresh.find_element(By.TAG_NAME, "h1").text == "striped"


def test_type_a_concept_and_see_ranked_neurons(browser: Any, live_server: LiveServer, screenshot: Callable) -> None:
    from selenium.webdriver.common.by import By

    run_id = live_server.dashboard.newer.run_id
    browser.get(f"{live_server.url}/runs/{run_id}/layers/{LAYER}")
    browser.find_element(By.ID, "concept-q").send_keys("striped")
    ranked = wait_for(
        lambda: browser.find_elements(By.CSS_SELECTOR, "#concept-results ol.ranked li"), message="ranked neurons"
    )
    assert ranked[0].find_element(By.TAG_NAME, "a").text == "0003"
    browser.find_element(By.CSS_SELECTOR, "#concept-results button").click()
    wait_for(lambda: "striped" in browser.find_element(By.ID, "typed-concepts").text, message="the kept concept")
    screenshot(browser, "layer-concept")

    browser.get(f"{live_server.url}/runs/{run_id}/layers/{LAYER}/neurons/11")
    browser.find_element(By.ID, "neuron-concept-q").send_keys("striped")
    text = wait_for(lambda: browser.find_element(By.ID, "neuron-concept").text, message="the neuron's rank")
    assert "ranks 2 of 2048" in text


def fake_executor(
    settings: Any, config: Any, progress: Any, should_stop: Any, *, engine: Any, **_: Any
) -> StoredDissection:
    """Stand in for the pipeline: report progress slowly, then store a small run."""
    for done in range(4):
        progress("activations", done, 4)
        time.sleep(0.6)
    progress("store", 4, 4)
    seeded = seed_run(
        engine, settings, model_name=config.model, layers=(LayerSpec("conv", "conv", 4), LayerSpec("fc", "linear", 3))
    )
    return StoredDissection(run_id=seeded.run_id, result=None)  # type: ignore[arg-type]  # the worker reads the id


def test_upload_a_checkpoint_and_watch_its_job_finish(
    new_browser: Callable[[], Any], live_server: LiveServer, screenshot: Callable, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    checkpoint = tmp_path / "tiny.pt"
    torch.save(TinyNet().state_dict(), checkpoint)
    browser = new_browser()
    browser.get(f"{live_server.url}/upload")
    wait_for(lambda: "/login?next=/upload" in browser.current_url, message="the login page")
    browser.get(live_server.login_link("/upload"))  # the link `serve` prints on a first start
    wait_for(lambda: browser.current_url == f"{live_server.url}/upload", message="the upload page, logged in")
    wait_for(lambda: browser.find_element(By.ID, "account").text == "admin", message="the account link")

    # The probe images come as an archive uploaded through the probe-set form, then chosen by name.
    archive = tmp_path / "lab-photos.zip"
    with zipfile.ZipFile(archive, "w") as packed:
        for index in range(3):
            image = io.BytesIO()
            Image.new("RGB", (24, 24), (40 * index, 90, 200)).save(image, format="PNG")
            packed.writestr(f"photos/photo_{index}.png", image.getvalue())
    browser.get(f"{live_server.url}/probe-sets")
    browser.find_element(By.ID, "name").send_keys("lab-photos")
    browser.find_element(By.ID, "archive").send_keys(str(archive))
    browser.find_element(By.CSS_SELECTOR, "form.upload-form button[type=submit]").click()
    row = wait_for(
        lambda: [r for r in browser.find_elements(By.CSS_SELECTOR, "#probe-sets tr") if "lab-photos" in r.text],
        message="the uploaded probe set in the list",
    )
    assert "3" in row[0].text
    screenshot(browser, "probe-sets")

    browser.get(f"{live_server.url}/upload")
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "input[name=layers]"), message="the layer picker")
    browser.find_element(By.CSS_SELECTOR, "#probe option[value=lab-photos]").click()
    screenshot(browser, "upload")

    wide = tmp_path / "wide.pt"
    torch.save(TinyNet(width=9).state_dict(), wide)
    browser.find_element(By.ID, "checkpoint").send_keys(str(wide))
    browser.find_element(By.CSS_SELECTOR, "input[name=layers][value=fc]").click()
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    error = wait_for(lambda: browser.find_elements(By.ID, "upload-error"), message="the upload error")
    assert "1 field marked below" in error[0].text
    assert "does not fit tinynet" in browser.find_element(By.ID, "checkpoint-error").text  # next to its field
    screenshot(browser, "upload-error")

    browser.find_element(By.ID, "checkpoint").send_keys(str(checkpoint))
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(lambda: "/jobs/" in browser.current_url, message="the job page")
    assert "queued" in browser.find_element(By.ID, "job-progress").text
    assert browser.find_element(By.ID, "job-owner").text == "by admin"
    job_id = int(browser.current_url.rstrip("/").rsplit("/", 1)[1])
    with Session(live_server.dashboard.engine) as session:
        job = session.get(Job, job_id)
        chosen = session.scalars(select(CatalogProbeSet).where(CatalogProbeSet.name == "lab-photos")).one()
        assert job is not None and Path(job.params["probe"]).name == Path(chosen.folder).name  # the uploaded images
    browser.execute_script("window.__sameDocument = true")

    settings = live_server.dashboard.settings
    worker = threading.Thread(
        target=run_worker,
        args=(settings,),
        kwargs={"once": True, "executor": fake_executor, "handle_signals": False, "poll_interval": 0.2},
        daemon=True,
    )
    worker.start()
    wait_for(lambda: "running" in browser.find_element(By.ID, "job-progress").text, message="running")
    wait_for(lambda: "/ 4" in browser.find_element(By.ID, "job-progress").text, message="progress")
    screenshot(browser, "job-running")
    link = wait_for(lambda: browser.find_elements(By.PARTIAL_LINK_TEXT, "Open run"), timeout=30, message="the run link")
    worker.join(timeout=10)
    assert "succeeded" in browser.find_element(By.ID, "job-progress").text
    assert browser.execute_script("return window.__sameDocument === true"), "the page reloaded instead of updating"
    screenshot(browser, "job-done")
    link[0].click()
    wait_for(lambda: "Layers" in browser.page_source and "/runs/" in browser.current_url, message="the new run")


def test_dark_mode_follows_the_system_setting(browser: Any, live_server: LiveServer, screenshot: Callable) -> None:
    run_id = live_server.dashboard.newer.run_id
    browser.execute_cdp_cmd(
        "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]}
    )
    try:
        browser.get(f"{live_server.url}/runs/{run_id}/layers/{LAYER}?sort=-score")
        background = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
        red, green, blue = (int(part) for part in background[background.index("(") + 1 : -1].split(",")[:3])
        assert red + green + blue < 120, background
        screenshot(browser, "layer-dark")
        browser.get(f"{live_server.url}/runs/{run_id}/layers/{LAYER}/neurons/3")
        screenshot(browser, "neuron-dark")
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})


def test_search_docs_and_error_pages(browser: Any, live_server: LiveServer, screenshot: Callable) -> None:
    from selenium.webdriver.common.by import By

    run_id = live_server.dashboard.newer.run_id
    browser.get(f"{live_server.url}/runs/{run_id}")
    box = browser.find_element(By.CSS_SELECTOR, "input[name=q]")
    box.send_keys("brick")
    box.submit()
    wait_for(lambda: "265 neurons" in browser.page_source, message="search results")
    screenshot(browser, "search")
    browser.get(f"{live_server.url}/docs")
    assert "/api/v1/runs/{run_id}/layers/{layer}/neurons" in browser.page_source
    screenshot(browser, "docs")
    browser.get(f"{live_server.url}/runs/{run_id}/layers/blocks.9")
    assert "its layers are: conv1, blocks.3, fc" in browser.find_element(By.TAG_NAME, "main").text
    screenshot(browser, "not-found")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_pages_fit_a_phone_screen(browser: Any, live_server: LiveServer, scheme: str) -> None:
    """At 390 px wide no page scrolls sideways, in either colour scheme (the login and catalogue pages too)."""
    run_id = live_server.dashboard.newer.run_id
    pages = {
        "home": "/",
        "run": f"/runs/{run_id}",
        "layer": f"/runs/{run_id}/layers/{LAYER}?sort=-score",
        "neuron": f"/runs/{run_id}/layers/{LAYER}/neurons/3",
        "upload": "/upload",
        "probe-sets": "/probe-sets",
        "login": "/login",
    }
    phone = {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True}
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", phone)
    browser.execute_cdp_cmd(
        "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": scheme}]}
    )
    try:
        for name, path in pages.items():
            browser.get(live_server.url + path)
            overflow = browser.execute_script(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            SCREENSHOTS.mkdir(exist_ok=True)
            browser.save_screenshot(str(SCREENSHOTS / f"phone-{scheme}-{name}.png"))
            assert overflow <= 1, f"{path} is {overflow} px wider than a 390 px screen ({scheme})"
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
