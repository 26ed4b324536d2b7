"""A real browser in the admin: headless Chromium (Debian's, through Selenium) logs in, finds the
FAILED saga through the filter, opens it, sees its timeline and diagram, retries it, confirms, and
sees it COMPLETED; a confirmed order offers no Delete. Screenshots of the list, the saga's page
and the dashboard go to tests/artifacts/ on every run."""

import time

import pytest
from django.contrib.auth import get_user_model
from selenium.webdriver.common.by import By

from saga.models import OperatorAction, SagaInstance, SagaStatus
from shop.celery import app as celery_app

from .browser import screenshot, start_chrome


@pytest.fixture
def eager_celery(settings):
    """The doorbell rings in the web process itself: a retried saga moves at once, no worker needed.
    Put back after on the Celery app too: the app reads Django's CELERY_ settings once, so the
    setting would otherwise stay for every later test (their doorbells run in their own process)."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def browser():
    chrome = start_chrome()
    yield chrome
    chrome.quit()


def wait_until(condition, *, timeout: float = 20, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.mark.timeout(900)  # a fresh machine installs Chromium first
def test_an_operator_finds_a_failed_saga_retries_it_and_sees_it_complete(
    live_server, sagas, dead_letter, eager_celery, browser
):
    get_user_model().objects.create_superuser("root", "root@example.com", "a long password")
    failed = sagas["failed"]

    browser.get(f"{live_server.url}/admin/login/")
    browser.find_element(By.NAME, "username").send_keys("root")
    browser.find_element(By.NAME, "password").send_keys("a long password")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()

    # The dashboard on the admin index: something needs attention.
    wait_until(lambda: browser.find_elements(By.ID, "saga-dashboard"), what="the dashboard")
    headline = browser.find_element(By.CSS_SELECTOR, "#saga-dashboard .saga-headline").text
    assert "1 failed saga" in headline and "1 stuck" in headline and "1 open dead letter" in headline
    screenshot(browser, "dashboard")

    # The saga list, filtered to FAILED through the filter.
    browser.get(f"{live_server.url}/admin/saga/sagainstance/")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")) == len(sagas)
    screenshot(browser, "saga-list")
    browser.find_element(By.CSS_SELECTOR, "#changelist-filter a[href*='status__exact=FAILED']").click()
    rows = wait_until(
        lambda: (r := browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")) and len(r) == 1 and r,
        what="the FAILED filter",
    )
    assert "FAILED" in rows[0].text and "capture_payment" in rows[0].text
    screenshot(browser, "saga-list-failed")

    # Its page: the timeline of every attempt and the diagram of the definition.
    rows[0].find_element(By.CSS_SELECTOR, "th a").click()
    wait_until(lambda: browser.find_elements(By.ID, "saga-timeline"), what="the saga's page")
    timeline = browser.find_element(By.ID, "saga-timeline").text
    assert "CRASHED" in timeline and "confirm_order" in timeline and "pivot" in timeline
    diagram = browser.find_element(By.CSS_SELECTOR, "#saga-diagram svg")
    assert diagram.find_element(By.CSS_SELECTOR, "g[data-step='capture_payment'] rect.current")
    screenshot(browser, "saga-detail")

    # Retry, confirm, and see it COMPLETED.
    browser.find_element(By.CSS_SELECTOR, "#saga-actions a[data-action=retry]").click()
    wait_until(lambda: browser.find_elements(By.ID, "saga-confirm"), what="the confirmation page")
    screenshot(browser, "saga-retry-confirm", full_page=False)
    browser.find_element(By.NAME, "comment").send_keys("provider is back up")
    browser.find_element(By.ID, "saga-confirm").click()

    def completed() -> bool:
        browser.refresh()
        return "COMPLETED" in browser.find_element(By.CSS_SELECTOR, "#content h1").text

    wait_until(completed, what="the saga to complete")
    assert SagaInstance.objects.get(pk=failed.pk).status == SagaStatus.COMPLETED
    assert "provider is back up" in browser.find_element(By.ID, "saga-timeline").text
    screenshot(browser, "saga-detail-after-retry")
    action = OperatorAction.objects.get(saga=failed)
    assert (action.action, action.username, action.outcome, action.comment) == (
        "retry",
        "root",
        "done",
        "provider is back up",
    )

    # Its order, CONFIRMED, offers neither Delete nor Save.
    browser.find_element(By.PARTIAL_LINK_TEXT, "order").click()
    wait_until(lambda: "CONFIRMED" in browser.find_element(By.ID, "content").text, what="the order's page")
    assert not browser.find_elements(By.CSS_SELECTOR, "a.deletelink")
    assert not browser.find_elements(By.CSS_SELECTOR, "input[name=_save]")
    assert "WIDGET \u00d7 3" in browser.find_element(By.ID, "content").text
    screenshot(browser, "order-detail")
