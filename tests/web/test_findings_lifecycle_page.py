"""The findings page in Chromium shows each finding's state: an acknowledged one is muted
and says who acknowledged it, until when and why; the state filter narrows the list;
resolved findings are listed with first and last seen; and the page counts, from the event
stream, the findings opened since it was opened."""

from __future__ import annotations

import pytest

import modelward
from modelward.ledger import artifacts

from ..alerts.test_alerts import GHOST, GHOST_DIGEST
from .browser import ARGS, CHROMIUM, Server, require_chromium, shot
from .browser import modelward as cli
from .test_pages import confirm_login

pytestmark = pytest.mark.slow
BOB = "bob@example.com"
OTHER = "sha256:" + "b" * 64


@pytest.fixture
def served(tmp_path):
    require_chromium()
    home = tmp_path / "home"
    led = modelward.open(str(home))
    led.record(alias="chat/v1", model_digest=GHOST_DIGEST, subject="u1")
    led.record(alias="chat/v2", model_digest=OTHER, subject="u2")
    led.close()
    assert cli(home, "check", "--select", "MW101").returncode == 1
    server = Server(home)
    yield home, server
    server.stop()


@pytest.fixture
def page(served):
    from playwright.sync_api import sync_playwright

    _home, server = served
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        ctx = b.new_context(viewport={"width": 1280, "height": 900})
        pg = ctx.new_page()
        pg.set_default_timeout(30_000)
        pg.goto(server.login_url(role="approver", email=BOB))
        confirm_login(pg, server.url + "/")
        yield pg
        b.close()


def _key(home, subject: str) -> str:
    import json

    rows = json.loads(cli(home, "findings", "list", "--json").stdout)
    return next(r["key"] for r in rows if r["subject"] == subject)


def test_states_filter_muted_acks_resolved_and_the_live_count(served, page):
    home, server = served
    ghost = _key(home, GHOST_DIGEST)
    assert cli(home, "findings", "ack", ghost, "--reason", "vendor weights on their way",
               "--until", "3d", "--as", "ana@example.com").returncode == 0
    assert cli(home, "check", "--select", "MW101").returncode == 1  # the other still fails
    pg = page
    pg.goto(server.url + "/")
    acked = pg.locator(f'article.finding[data-fingerprint="{ghost}"]')
    assert acked.get_attribute("data-state") == "acknowledged"
    assert "acked" in acked.get_attribute("class")
    assert float(acked.evaluate("e => getComputedStyle(e).opacity")) < 0.8  # muted
    assert acked.locator(".ack-by").inner_text() == "ana@example.com"
    assert acked.locator(".ack-reason").inner_text() == "vendor weights on their way"
    assert acked.locator(".ack-until").count() == 1
    other = pg.locator('article.finding[data-state="open"]')
    assert other.count() == 1 and float(other.evaluate(
        "e => getComputedStyle(e).opacity")) == 1.0
    shot(pg, "01f-findings-acknowledged")

    pg.select_option("#f-state", "acknowledged")
    with pg.expect_navigation():
        pg.click("form.filters button[type=submit]")
    assert "state=acknowledged" in pg.url
    assert [a.get_attribute("data-state") for a in pg.locator("article.finding").all()] == [
        "acknowledged"]

    # a new finding opens while the page is open: the event stream counts it
    pg.goto(server.url + "/")
    pg.wait_for_timeout(1500)  # the stream is connected
    led = modelward.open(str(home))
    led.record(alias="chat/v3", model_digest="sha256:" + "c" * 64, subject="u3")
    led.close()
    artifacts_home = modelward.open(str(home))
    artifacts.register_bytes(artifacts_home.store, "model", GHOST, name="ghost")
    artifacts_home.close()
    assert cli(home, "check", "--select", "MW101").returncode == 1  # ghost resolves
    pg.wait_for_selector("#live-new:not([hidden])", timeout=30_000)
    assert pg.locator("#live-new-text").inner_text() == \
        "1 new finding since you opened the page."
    pg.click("#live-new a")
    pg.wait_for_selector("#resolved")
    row = pg.locator(f'#resolved tr[data-fingerprint="{ghost}"]')
    assert row.get_attribute("data-state") == "resolved"
    assert row.locator("td").count() == 5  # guard, subject, opened, last seen, resolved
    shot(pg, "01g-findings-resolved")
