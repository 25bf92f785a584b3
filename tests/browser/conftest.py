"""Browser fixtures: a real uvicorn server on a free loopback port over seeded data, and headless Chromium."""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from app.cli.accounts import first_start_link
from tests.support.dashboard_seed import Dashboard, build_dashboard

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = Path(__file__).parent / "screenshots"
WAIT_S = 15
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1440,1000",
)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class LiveServer:
    """A uvicorn server running the app in a background thread."""

    url: str
    dashboard: Dashboard
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for it."""
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def login_link(self, next_path: str = "/") -> str:
        """Return a one-time login link of the seeded (passwordless) admin, as `serve` prints it on start."""
        link = first_start_link(self.dashboard.settings, self.url, next_path)
        assert link is not None, "the seeded admin has a password, so serve would print no link"
        return link


def start_server(dashboard: Dashboard) -> LiveServer:
    """Start uvicorn on a free loopback port with the dashboard's app; return once it accepts requests."""
    port = free_port()
    config = uvicorn.Config(dashboard.app(), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"uvicorn did not start on port {port}")
        time.sleep(0.05)
    return LiveServer(f"http://127.0.0.1:{port}", dashboard, server, thread)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The app over freshly seeded data, served by a real uvicorn on loopback."""
    dashboard = build_dashboard(tmp_path_factory.mktemp("browser") / "data")
    server = start_server(dashboard)
    yield server
    server.stop()
    dashboard.engine.dispose()


def _chromium_or_skip() -> Any:
    try:
        from selenium import webdriver
    except ImportError:
        pytest.skip("selenium is not installed: pip install selenium (a dev dependency)")
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        pytest.skip(f"{', '.join(missing)} not found: apt-get install -y chromium chromium-driver")
    return webdriver


@pytest.fixture(scope="session")
def new_browser() -> Iterator[Callable[[], Any]]:
    """A factory of fresh headless Chromium sessions (each with its own profile); all are closed at the end."""
    webdriver = _chromium_or_skip()
    from selenium.webdriver.chrome.service import Service

    drivers: list[Any] = []
    profiles: list[str] = []

    def make() -> Any:
        profile = tempfile.mkdtemp(prefix="atlas-chromium-")
        profiles.append(profile)
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
        driver.set_page_load_timeout(30)
        drivers.append(driver)
        return driver

    yield make
    for driver in drivers:
        driver.quit()
    for profile in profiles:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="session")
def browser(new_browser: Callable[[], Any], live_server: LiveServer) -> Any:
    """One headless Chromium shared by the flows, logged in as the admin (who may change the seeded runs)."""
    driver = new_browser()
    driver.get(live_server.login_link())
    return driver


@pytest.fixture(scope="session")
def screenshot() -> Callable[[Any, str], Path]:
    """Save a full-page PNG of the browser's current page to tests/browser/screenshots/NAME.png."""
    SCREENSHOTS.mkdir(exist_ok=True)

    def save(driver: Any, name: str) -> Path:
        height = driver.execute_script("return Math.min(document.documentElement.scrollHeight, 4000)")
        driver.set_window_size(1440, max(900, int(height)))
        path = SCREENSHOTS / f"{name}.png"
        driver.save_screenshot(str(path))
        driver.set_window_size(1440, 1000)
        return path

    return save


def wait_for(condition: Callable[[], Any], timeout: float = WAIT_S, message: str = "condition") -> Any:
    """Poll until `condition()` is truthy and return it, or fail after `timeout` seconds."""
    from selenium.common.exceptions import StaleElementReferenceException

    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except StaleElementReferenceException:  # htmx swapped the element while we read it
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {message}")
        time.sleep(0.1)
