"""Starting a training run in the embedded mode (no broker): the page answers at once and the same
tab shows the run's progress, because the app's local worker (scrapannot.background) trains it in
a thread instead of inside the request."""

import os
import re
import time

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from mlloop.models import ModelVersion
from scrapannot import background
from scrapannot.roles import Role
from tests.conftest import user_with_roles
from tests.mlloop.model_factories import frozen_dataset, splits

pytest_plugins = ["tests.browser_fixtures"]

SCREENS = os.environ.get("SCRAPANNOT_SCREENS", "")


@pytest.fixture
def local_worker(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    # timm's smallest convnet at 32 px: many epochs, so that the run
    # trains for longer than a few polls of its page.
    tiny = {"BACKBONE": "test_convnext", "IMAGE_SIZE": 32, "EPOCHS": 400}
    settings.MLLOOP = settings.MLLOOP | tiny
    background.start()
    yield
    background.stop(wait=True)


@pytest.mark.browser
def test_a_started_run_answers_at_once_and_its_progress_moves_in_the_same_tab(
    page, log_in, local_worker
):
    user_with_roles("boss", Role.ADMIN)
    data = frozen_dataset(splits(8, 4, 2))
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.set_viewport_size({"width": 1440, "height": 900})
    log_in(username="boss", password="boss-pass-1")
    page.goto(reverse("mlloop:models"))
    page.locator("#start-run select").select_option(str(data.number))

    started = time.monotonic()
    page.get_by_role("button", name="Start a training run").click()
    page.wait_for_url("**/models/1/")
    answered = time.monotonic() - started

    # The answer came before the run finished: the page draws the live progress bar, which a run
    # trained inside the request (finished by the time the page renders) never shows.
    expect(page.locator("#run-progress")).to_be_visible()
    assert answered < 5, f"the start took {answered:.1f} s to answer"
    # The page polls every 2 s: the bar moves while the heads train, in this tab.
    expect(page.locator("#run-stage")).to_have_text(re.compile("features|training"), timeout=30_000)
    page.wait_for_function("document.getElementById('run-progress').value > 0")
    if SCREENS:
        page.screenshot(path=f"{SCREENS}/model-run-progress.png", full_page=True)
    # The same tab follows the run to its end and then shows the result, with no second tab.
    expect(page.locator("#metrics")).to_be_visible(timeout=180_000)
    expect(page.locator("#run-progress")).to_have_count(0)
    version = ModelVersion.objects.get(number=1)
    assert version.status == ModelVersion.Status.SUCCEEDED, version.log
    assert version.task_id  # the local worker's task id is remembered, as a broker's would be
    assert errors == []
