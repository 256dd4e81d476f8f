"""The review page in headless Chromium, served by waitress on 127.0.0.1.

Needs Debian's chromium and chromium-driver. Without them the tests are
skipped, or fail when FENGHUO_REQUIRE_SERVICES=1. Screenshots go to the
folder named by FENGHUO_SCREENSHOTS, else to the test's tmp_path.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from graded_posts import (
    HOSTILE_AUTHOR,
    HOSTILE_TEXT,
    HOSTILE_URL,
    add_graded_post,
    add_post_alert,
)
from problem_posts import ProblemFiler
from review_client import PASSWORD, ROOT, make_config
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

import pipeline
from storage import Store
from web.app import create_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_MISSING = (
    "headless Chromium not found (Debian packages chromium and chromium-driver); "
    "install them to run the browser tests"
)
# Seconds to wait for a dialog that a hostile post might open.
DIALOG_WAIT = 1.5


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        if os.environ.get("FENGHUO_REQUIRE_SERVICES") == "1":
            pytest.fail(CHROMIUM_MISSING)
        pytest.skip(CHROMIUM_MISSING)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1366,900",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(argument)
    # A given driver path keeps Selenium Manager, which downloads drivers,
    # from running.
    service = webdriver.ChromeService(executable_path=str(CHROMEDRIVER))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)


@pytest.fixture
def live_server(sqlite_store: Store, users) -> Iterator[str]:
    """Serve the review page with waitress on a free loopback port."""
    from waitress import create_server, wasyncore

    config = make_config(str(sqlite_store.engine.url))
    server = create_server(
        create_app(config, sqlite_store), host="127.0.0.1", port=0, ident="fenghuo"
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        # Closing every channel, kept-alive browser connections included,
        # empties waitress's socket map, which ends its loop.
        server.task_dispatcher.shutdown()
        wasyncore.close_all(server._map)
        thread.join(timeout=10)
        assert not thread.is_alive(), "waitress did not stop"


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("FENGHUO_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def dialog_opened(driver) -> bool:
    try:
        WebDriverWait(driver, DIALOG_WAIT).until(expected_conditions.alert_is_present())
    except TimeoutException:
        return False
    driver.switch_to.alert.dismiss()
    return True


def log_in(driver, base_url: str, name: str) -> None:
    driver.get(f"{base_url}/")
    driver.find_element(By.ID, "name").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    WebDriverWait(driver, 10).until(expected_conditions.title_contains("待处理队列"))


def test_dialog_check_sees_dialogs(browser) -> None:
    browser.get("data:text/html,<script>alert(1)</script>")

    assert dialog_opened(browser)


def test_queue_and_post_in_browser(
    browser, live_server: str, sqlite_store: Store, screenshots: Path
) -> None:
    # The server runs on the real clock, so the posts are recent.
    now = datetime.now(UTC).replace(microsecond=0)
    add_graded_post(
        sqlite_store,
        "evil",
        level="critical",
        text=HOSTILE_TEXT,
        author=HOSTILE_AUTHOR,
        url=HOSTILE_URL,
        created_at=now - timedelta(hours=3),
        deadline=now + timedelta(hours=1),
    )
    for i in range(12):
        add_graded_post(
            sqlite_store,
            str(i),
            level="critical" if i % 4 == 0 else "medium",
            kind="grievance" if i % 3 else "complaint",
            created_at=now - timedelta(hours=i + 1),
            deadline=now + timedelta(hours=2 + i),
        )

    log_in(browser, live_server, "analyst")

    assert browser.current_url == f"{live_server}/"
    assert not dialog_opened(browser)
    rows = browser.find_elements(By.CSS_SELECTOR, "table.queue tbody tr")
    assert len(rows) == 13
    assert HOSTILE_AUTHOR in rows[0].text
    assert "<script>" in rows[0].find_element(By.CSS_SELECTOR, "td.snippet").text
    browser.save_screenshot(str(screenshots / "queue.png"))

    rows[0].find_element(By.CSS_SELECTOR, "td.snippet a").click()
    WebDriverWait(browser, 10).until(expected_conditions.title_contains("帖子"))

    assert not dialog_opened(browser)
    text = browser.find_element(By.CSS_SELECTOR, ".post-text").text
    assert text == HOSTILE_TEXT
    assert browser.find_elements(By.CSS_SELECTOR, ".facts a") == []
    assert "危机" in browser.find_element(By.TAG_NAME, "h1").text
    browser.save_screenshot(str(screenshots / "post.png"))
    assert (screenshots / "queue.png").stat().st_size > 0
    assert (screenshots / "post.png").stat().st_size > 0


def images_loaded(driver) -> list[bool]:
    """Tell for each image of the page whether it loaded and has pixels."""
    return [
        driver.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth > 0", image
        )
        for image in driver.find_elements(By.TAG_NAME, "img")
    ]


def test_problem_report_sources_in_browser(
    browser, live_server: str, sqlite_store: Store, screenshots: Path
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    filer = ProblemFiler(sqlite_store)
    label = 'QC7 · <script>alert("label")</script>'
    filer.file(
        "evil",
        1,
        11,
        label=label,
        text=HOSTILE_TEXT,
        author=HOSTILE_AUTHOR,
        url=HOSTILE_URL,
        posted=now - timedelta(days=2),
        level="critical",
    )
    for i in range(6):
        filer.file(
            str(i), 1, 12 + i % 2, label=label, posted=now - timedelta(hours=30 - i)
        )
    run_id = sqlite_store.start_run("demo")
    sqlite_store.finish_run(
        run_id,
        status="failed",
        fetched=0,
        new=0,
        duplicates=0,
        bad=0,
        error='<img src=x onerror=alert("run")> HTTP 503',
    )

    log_in(browser, live_server, "viewer")
    browser.get(f"{live_server}/problems")
    assert not dialog_opened(browser)
    browser.save_screenshot(str(screenshots / "problems.png"))
    browser.find_element(By.CSS_SELECTOR, "table.problems td a").click()
    WebDriverWait(browser, 10).until(expected_conditions.title_contains("问题 1"))

    assert not dialog_opened(browser)
    assert (
        '<script>alert("label")</script>'
        in browser.find_element(By.TAG_NAME, "h1").text
    )
    assert images_loaded(browser) == [True]
    posts = browser.find_elements(By.CSS_SELECTOR, "table.problem-posts tbody tr")
    assert len(posts) == 7
    assert HOSTILE_AUTHOR in browser.find_element(By.CSS_SELECTOR, "table.authors").text
    browser.save_screenshot(str(screenshots / "problem.png"))

    browser.get(f"{live_server}/report")
    assert not dialog_opened(browser)
    assert images_loaded(browser) == [True] * 4
    browser.save_screenshot(str(screenshots / "report.png"))

    browser.get(f"{live_server}/sources")
    assert not dialog_opened(browser)
    assert "HTTP 503" in browser.find_element(By.CSS_SELECTOR, ".run-error").text
    browser.save_screenshot(str(screenshots / "sources.png"))
    for name in ("problems", "problem", "report", "sources"):
        assert (screenshots / f"{name}.png").stat().st_size > 0, name


def test_logout_in_browser(browser, live_server: str) -> None:
    log_in(browser, live_server, "viewer")

    browser.find_element(By.CSS_SELECTOR, "header form button").click()
    WebDriverWait(browser, 10).until(expected_conditions.title_contains("登录"))
    browser.get(f"{live_server}/")

    assert browser.current_url == f"{live_server}/login?next=/"


def test_correct_and_acknowledge_in_browser(
    browser, live_server: str, sqlite_store: Store, screenshots: Path, tmp_path: Path
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    post_id = add_graded_post(
        sqlite_store,
        "brake",
        level="medium",
        kind="complaint",
        created_at=now - timedelta(hours=1),
        deadline=now + timedelta(hours=4),
    )
    alert_id = add_post_alert(sqlite_store, post_id, level="medium")

    log_in(browser, live_server, "lead")
    browser.find_element(By.CSS_SELECTOR, "table.queue td.snippet a").click()
    WebDriverWait(browser, 10).until(expected_conditions.title_contains("帖子"))
    Select(browser.find_element(By.ID, "level")).select_by_value("critical")
    submit_and_wait(browser, "#level-form button")
    WebDriverWait(browser, 10).until(
        expected_conditions.text_to_be_present_in_element(
            (By.CSS_SELECTOR, ".level-in-force"), "危机"
        )
    )
    submit_and_wait(browser, "#kind-form button")
    WebDriverWait(browser, 10).until(
        expected_conditions.presence_of_element_located(
            (By.CSS_SELECTOR, "table.corrections tbody tr:nth-child(2)")
        )
    )
    submit_and_wait(browser, "#acknowledge-form button")
    WebDriverWait(browser, 10).until(
        expected_conditions.text_to_be_present_in_element(
            (By.CSS_SELECTOR, ".alert-state"), "已确认"
        )
    )

    assert not dialog_opened(browser)
    assert browser.current_url == f"{live_server}/posts/{post_id}#review"
    rows = browser.find_elements(By.CSS_SELECTOR, "table.corrections tbody tr")
    assert "中等" in rows[0].text
    assert "危机" in rows[0].text
    assert "（确认）" in rows[1].text
    assert browser.find_elements(By.ID, "acknowledge-form") == []
    browser.save_screenshot(str(screenshots / "post-actions.png"))

    browser.get(f"{live_server}/audit")
    audit = browser.find_element(By.CSS_SELECTOR, "table.audit").text
    assert "post.correct" in audit
    assert "post.confirm" in audit
    assert "alert.acknowledge" in audit
    assert f'"alert_id": {alert_id}' in audit
    browser.save_screenshot(str(screenshots / "audit-actions.png"))

    result = run_train(sqlite_store, tmp_path)
    assert result.exit_code == 0, result.output
    assert "corrections: 1 kind labels used (by lead 1)" in result.output
    assert "1 posts with level corrections" in result.output


def submit_and_wait(browser, button_selector: str) -> None:
    """Click a form's button and wait until the page it posted from is gone.

    Reading an element while the next page loads can fail inside chromedriver
    ("unhandled inspector error"), so the old page must be gone first.
    """
    button = browser.find_element(By.CSS_SELECTOR, button_selector)
    old_page = browser.find_element(By.TAG_NAME, "html")
    button.click()
    WebDriverWait(browser, 10).until(expected_conditions.staleness_of(old_page))


def run_train(store: Store, tmp_path: Path):
    """Run ``pipeline.py train`` on the page's database, writing into tmp_path."""
    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    data["storage"] = {"url": str(store.engine.url)}
    data["model_path"] = str(tmp_path / "model.joblib")
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return CliRunner().invoke(pipeline.cli, ["train", "--config", str(config_path)])
