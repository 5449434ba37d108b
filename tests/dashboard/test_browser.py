"""The dashboard in a real headless Chromium (selenium), served by the real CLI beside a real
worker: counts change live, retry from Failed, a progress bar moves without a reload, pause and
resume, escaping, CSRF. (test_screenshots.py saves pictures of the pages.)

The ``browser`` fixture (conftest.py) skips only when chromium is absent outside CI; under CI
(``CI`` set) a missing browser fails.
"""

from __future__ import annotations

from selenium.webdriver.common.by import By

from tests.apps import dashboarded
from tests.workers import ROOT, wait_for


def _text(browser, css: str) -> str:
    """Read in one script call: the live refresh may replace the element between two calls."""
    return browser.execute_script("var el = document.querySelector(arguments[0]); return el ? el.innerText : ''",
                                  css).strip()


def _alert(browser):
    try:
        return browser.switch_to.alert
    except Exception:
        return None


def test_overview_counts_change_live_as_jobs_run(worker, start_dashboard, browser, redis_client):
    dash = start_dashboard()
    browser.get(dash.url + "/")
    assert _text(browser, 'tr[data-function="steps"] [data-count="active"]') == "0"
    future = dashboarded.steps.submit(count=1)
    wait_for(lambda: _text(browser, 'tr[data-function="steps"] [data-count="active"]') == "1", timeout=20,
             message="the active count to show 1 without a reload")
    redis_client.rpush(dashboarded.GATE, "go")
    future.result(timeout=20)
    wait_for(lambda: _text(browser, 'tr[data-function="steps"] [data-count="active"]') == "0", timeout=20,
             message="the active count to drop back to 0")


def test_a_failed_job_is_retried_from_the_failed_page_and_completes(worker, start_dashboard, browser, redis_client):
    future = dashboarded.needs_fix.submit()
    wait_for(lambda: future.status() == "failed", timeout=20, message="needs_fix to fail")
    dash = start_dashboard()
    browser.get(dash.url + "/failed")
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-job="{future.job_id}"]')
    assert "RuntimeError: not fixed yet" in row.text
    redis_client.set(dashboarded.FIXED_FLAG, "1")
    row.find_element(By.CSS_SELECTOR, "[data-action]").click()
    wait_for(lambda: "Done" in _text(browser, "#flash"), timeout=20, message="the retry to be acknowledged")
    assert future.result(timeout=20).value == "fixed"  # only once queued again: result() of a failed job raises
    wait_for(lambda: future.job_id not in _text(browser, "#failed-table"), timeout=20,
             message="the job to leave the failed list")


def test_a_running_jobs_progress_bar_moves_without_a_reload(worker, start_dashboard, browser, redis_client):
    future = dashboarded.steps.submit(count=4)
    wait_for(lambda: future.status() == "active", timeout=20, message="the job to start")
    dash = start_dashboard()
    browser.get(f"{dash.url}/jobs/{future.job_id}")
    marker = browser.execute_script("window.notReloaded = true; return window.notReloaded")
    for step in (1, 2):
        redis_client.rpush(dashboarded.GATE, "go")
        wait_for(lambda step=step: _text(browser, "#progress-text") == f"{step * 25} %", timeout=20,
                 message=f"the progress bar at {step * 25} %")
    assert "step 2 of 4" in _text(browser, "#progress-message") and "stepped" in _text(browser, "#logs")
    assert browser.execute_script("return window.notReloaded") is marker is True
    redis_client.rpush(dashboarded.GATE, "go", "go")
    future.result(timeout=20)


def test_pause_from_the_function_page_keeps_jobs_queued_until_resume(worker, start_dashboard, browser):
    dash = start_dashboard()
    browser.get(dash.url + "/functions/echo")
    browser.find_element(By.XPATH, "//button[text()='Pause']").click()
    wait_for(lambda: _text(browser, "#paused-badge"), timeout=20, message="the paused badge")
    waiting = dashboarded.echo.submit(value="held")
    wait_for(lambda: _text(browser, '#function-head [data-count="queued"]') == "1", timeout=20,
             message="the job to show as queued")
    assert waiting.status() == "queued"
    browser.find_element(By.XPATH, "//button[text()='Resume']").click()
    assert waiting.result(timeout=20).value == "held"


def test_a_script_in_arguments_and_errors_shows_as_text_and_never_runs(worker, start_dashboard, browser):
    script = "<script>window.pwned = 1</script><img src=x onerror='window.pwned = 2'>"
    future = dashboarded.fails.submit(text=script)
    wait_for(lambda: future.status() == "failed", timeout=20, message="the job to fail")
    dash = start_dashboard()
    for page in (f"/jobs/{future.job_id}", "/failed", "/jobs"):
        browser.get(dash.url + page)
        assert script in browser.find_element(By.TAG_NAME, "main").text, page
        assert browser.execute_script("return window.pwned === undefined"), page


def test_an_action_without_the_csrf_token_is_refused(worker, start_dashboard, browser):
    future = dashboarded.fails.submit(text="stay failed")
    wait_for(lambda: future.status() == "failed", timeout=20, message="the job to fail")
    dash = start_dashboard()
    browser.get(dash.url + "/failed")
    status = browser.execute_script(
        "return fetch(arguments[0], {method: 'POST', credentials: 'same-origin'}).then(r => r.status)",
        f"{dash.url}/api/jobs/{future.job_id}/retry")
    assert status == 403 and future.status() == "failed"


def test_bulk_retry_from_the_failed_page_asks_with_the_count(worker, start_dashboard, browser):
    futures = [dashboarded.fails.submit(text=f"Timeout {i}") for i in range(2)]
    wait_for(lambda: all(f.status() == "failed" for f in futures), timeout=20, message="jobs to fail")
    dash = start_dashboard()
    browser.get(dash.url + "/failed")
    browser.find_element(By.XPATH, "//form[@id='bulk']//option[text()='fails']").click()
    browser.find_element(By.CSS_SELECTOR, '#bulk input[name="error"]').send_keys("timeout")
    browser.find_element(By.CSS_SELECTOR, '[data-bulk="retry"]').click()
    alert = wait_for(lambda: _alert(browser), timeout=10, message="the confirmation")
    assert "2 job(s) of fails" in alert.text
    alert.accept()
    wait_for(lambda: "Done: 2 of 2" in _text(browser, "#flash"), timeout=20, message="the bulk retry to report")


def test_the_static_files_load_nothing_from_elsewhere():
    for name in ("app.css", "app.js"):
        text = (ROOT / "upnext" / "dashboard" / "static" / name).read_text()
        assert "http://" not in text and "https://" not in text and "@font-face" not in text, name
