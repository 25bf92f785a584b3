"""The job page's clock updating in place and the delete confirmation, at light, dark and 390 px (#26)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from app.jobs.queue import jobs as queue
from app.persistence.db import write_session
from app.persistence.models import Job, utcnow
from tests.browser.conftest import SCREENSHOTS, LiveServer, wait_for
from tests.support.dashboard_seed import LayerSpec, seed_run

pytestmark = pytest.mark.browser
PHONE_WIDTH = 390


def _shots(browser: Any, name: str) -> None:
    """Save the page at light and dark, then at 390 px (checking nothing scrolls sideways there)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for scheme in ("light", "dark"):
        browser.execute_cdp_cmd(
            "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": scheme}]}
        )
        browser.save_screenshot(str(SCREENSHOTS / f"{name}_{scheme}.png"))
    browser.set_window_size(PHONE_WIDTH, 900)
    try:
        fits = browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
        browser.save_screenshot(str(SCREENSHOTS / f"{name}_phone.png"))
        assert fits, f"{name} scrolls sideways at {PHONE_WIDTH} px"
    finally:
        browser.set_window_size(1440, 1000)
        browser.execute_cdp_cmd(
            "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "light"}]}
        )


def test_the_job_page_counts_time_and_links_the_run_without_a_reload(browser: Any, live_server: LiveServer) -> None:
    from selenium.webdriver.common.by import By

    engine = live_server.dashboard.engine
    with write_session(engine) as session:
        job_id = queue.enqueue(session, {"model": "tinynet", "layers": ["fc"], "probe": "browser-clock"}).id
    claimed = queue.claim_next(engine, "browser-worker")
    while claimed is not None and claimed.id != job_id:
        queue.cancel(engine, claimed.id)
        claimed = queue.claim_next(engine, "browser-worker")
    queue.report_progress(engine, job_id, "browser-worker", "probe pass", 3, 12)
    now = utcnow()
    with write_session(engine) as session:
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(started_at=now - timedelta(seconds=125), stage_started_at=now - timedelta(seconds=30))
        )
    browser.get(f"{live_server.url}/jobs/{job_id}")
    browser.execute_script("window.stillThisPage = true")
    clock = wait_for(lambda: browser.find_element(By.ID, "job-clock").text, message="the job's clock")
    assert "stage 3 of" in clock and "running for 2 min" in clock and "left in this stage" in clock
    _shots(browser, "job_running")
    queue.finish(engine, job_id, "browser-worker", live_server.dashboard.newer.run_id)
    wait_for(lambda: "took" in browser.find_element(By.ID, "job-clock").text, message="the job's duration")
    assert browser.execute_script("return window.stillThisPage === true"), "the page reloaded"
    link = browser.find_element(By.CSS_SELECTOR, "#job-progress a.button.primary")
    assert link.get_attribute("href").endswith(f"/runs/{live_server.dashboard.newer.run_id}")
    _shots(browser, "job_done")


def test_delete_asks_first_and_says_what_went(browser: Any, live_server: LiveServer) -> None:
    from selenium.webdriver.common.by import By

    dashboard = live_server.dashboard
    layers = (LayerSpec("conv1", "conv", 3), LayerSpec("fc", "linear", 4))
    run_id = seed_run(dashboard.engine, dashboard.settings, model_name="doomed-net", layers=layers).run_id
    browser.get(f"{live_server.url}/runs/{run_id}")
    browser.find_element(By.CSS_SELECTOR, "#delete-run a").click()
    title = wait_for(lambda: browser.find_element(By.ID, "delete-title").text, message="the confirmation page")
    assert title == f"Delete run #{run_id} · doomed-net?"
    goes = browser.find_element(By.ID, "delete-goes").text
    assert "2 layers: conv1, fc" in goes and "7 neurons" in goes
    _shots(browser, "run_delete_confirm")
    browser.find_element(By.CSS_SELECTOR, "#delete-run button").click()
    flash = wait_for(lambda: browser.find_element(By.ID, "flash").text, message="the message after deleting")
    assert flash.startswith(f"Deleted run #{run_id} · doomed-net: 2 layers, 7 neurons")
    _shots(browser, "run_deleted_home")
