"""The dashboard in a real browser: Debian's Chromium, driven by Playwright, through every
page of the demo ledger (plus an experiment, fingerprint runs and a promotion request from
page_world), served by a real ``modelward serve``. Screenshots land in
test-artifacts/screenshots/."""

from __future__ import annotations

import json
import os
import re
import statistics
import sys
from urllib.parse import quote, urlencode

import pytest

from modelward.guards.refs import facts_of
from modelward.ledger import findings as ledger_findings
from modelward.ledger import promotions
from modelward.ledger import tokens as ledger_tokens
from modelward.ledger.engine import Store
from modelward.settings import Settings
from modelward.web.auth import COOKIE

from . import page_world
from .browser import ARGS, CHROMIUM, ROOT, SHOTS, Server, require_chromium, shot

sys.path.insert(0, str(ROOT))
from demo import build as build_demo  # noqa: E402
from demo.report import check_findings  # noqa: E402

pytestmark = pytest.mark.slow
BOB = "bob@example.com"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    require_chromium()
    base = tmp_path_factory.mktemp("pages")
    demo = build_demo(base / "demo-ledger")
    store = Store(Settings({"home": str(demo.path),
                            "database_url": f"sqlite:///{demo.path / 'ledger.db'}",
                            "blob_url": str(demo.path / "blobs")}))
    extra = page_world.build(store, base)
    extra.findings = check_findings(demo.path)  # what `modelward check --format json` says
    yield demo, extra, store
    store.dispose()


@pytest.fixture(scope="module")
def server(world):
    srv = Server(world[0].path)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser(world):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    """A fresh browser context, logged in as bob (an approver) through a one-time link."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()
    pg.set_default_timeout(20_000)
    pg.goto(server.login_url(role="approver", email=BOB))
    assert pg.locator("#login-as").inner_text() == f"{BOB} · approver"
    confirm_login(pg, server.url + "/")  # opening the link alone logs nobody in
    yield pg
    ctx.close()


def confirm_login(pg, url: str) -> None:
    """Press Continue on a log-in link's page; the landing page may be the findings page
    (it answers at once from the latest recorded guard run)."""
    with pg.expect_navigation(url=url, timeout=60_000):
        pg.click("#continue")


def _no_errors(pg):
    assert pg.locator("p.error").count() == 0, pg.locator("p.error").all_inner_texts()


def test_every_page_needs_a_log_in_and_a_link_works_once(browser, server, world):
    ctx = browser.new_context()
    pg = ctx.new_page()
    pg.goto(server.url + "/aliases?alias=chat/v1")
    assert pg.url == server.url + "/login?next=%2Faliases%3Falias%3Dchat%2Fv1"
    shot(pg, "00-login")
    pg.fill("#token", "mw_not-a-token")
    pg.click("button[type=submit]")
    assert pg.locator("p.error").inner_text() == "That token is unknown, revoked or expired."
    with world[2].write() as conn:
        _tok, secret = ledger_tokens.create(conn, role="reader", name="pasted")
    pg.fill("#token", secret)
    pg.click("button[type=submit]")
    assert pg.url == server.url + "/aliases?alias=chat/v1"  # back where the visitor wanted
    # the cookie holds a session token of its own, which logging out revokes
    assert pg.locator("header .who span").inner_text() == "dashboard session: pasted · reader"
    session = next(c["value"] for c in ctx.cookies() if c["name"] == COOKIE)
    assert session != secret
    pg.click("header .who button")  # log out
    assert pg.url == server.url + "/login"
    with world[2].read() as conn:
        assert ledger_tokens.authenticate(conn, session) is None
        assert ledger_tokens.authenticate(conn, secret) is not None  # the pasted one lives
    pg.goto(server.url + "/coverage")
    assert pg.url.startswith(server.url + "/login?next=")
    link = server.login_url(email=BOB)
    other = ctx.new_page()
    other.goto(link)
    assert other.url == link  # a page asking to continue, not a session
    assert ctx.cookies() == []
    confirm_login(other, server.url + "/")
    assert other.locator("header .who span").inner_text() == f"{BOB} · reader"
    other.context.clear_cookies()
    other.goto(link)  # the same link a second time
    assert other.url.startswith(server.url + "/login?code=")
    assert "already used" in other.locator("p.error").inner_text()
    ctx.close()


def _shown_run(pg, store):
    """The run the page shows, and (run, previous run, its keys) from the ledger."""
    run_id = pg.locator("#run-state").get_attribute("data-run")
    with store.read() as conn:
        run = ledger_findings.get_run(conn, run_id)
        previous = ledger_findings.latest_run(conn, before=run)
        keys = ledger_findings.run_keys(conn, run_id)
        before = ledger_findings.run_keys(conn, previous.id) if previous else set()
    return run, previous, keys, before


def _new_is_what_the_previous_run_did_not_show(pg, store):
    run, previous, keys, before = _shown_run(pg, store)
    shown = dict(pg.locator("article.finding").evaluate_all(
        "els => els.map(e => [e.dataset.fingerprint, e.dataset.new === 'true'])"))
    assert set(shown) == keys
    if previous is not None:
        code = dict(pg.locator("article.finding").evaluate_all(
            "els => els.map(e => [e.dataset.fingerprint, e.dataset.code])"))
        assert {k for k, new in shown.items() if new} == {
            k for k in keys if k not in before and code[k] in previous.guards}
    return run, previous


def test_findings_ranked_by_guard_filtered_and_through_to_the_audit_of_a_decision(page, server,
                                                                                  world):
    expected = world[1].findings  # the page shows what `modelward check` reports
    pg = page
    assert pg.locator("h1").inner_text() == "Findings"
    run, previous, keys, before = _shown_run(pg, world[2])
    assert keys == {f["fingerprint"] for f in expected}  # the recorded run is the check's
    for sev in ("error", "warning", "info"):
        n = sum(f["severity"] == sev for f in expected)
        assert pg.locator(f".summary [data-severity={sev}]").inner_text() == f"{n} {sev}"
    shown = pg.locator("article.finding").evaluate_all(
        "els => els.map(e => [e.dataset.fingerprint, e.dataset.new])")
    assert sorted(k for k, _new in shown) == sorted(keys)
    _new_is_what_the_previous_run_did_not_show(pg, world[2])
    # ranked: most severe guard first, then most decisions affected
    rows = pg.locator("#ranked tbody tr").evaluate_all(
        "els => els.map(e => [e.dataset.code, e.dataset.severity,"
        " +e.querySelector('.decisions-n').textContent,"
        " +e.querySelector('.findings-n').textContent])")
    rank = {"error": 2, "warning": 1, "info": 0}
    assert rows == sorted(rows, key=lambda r: (-rank[r[1]], -r[2], -r[3], r[0]))
    assert {r[0] for r in rows} == {f["code"] for f in expected}
    for code, _sev, decisions, n in rows:
        mine = [f for f in expected if f["code"] == code]
        assert n == len(mine)
        assert decisions == sum(facts_of(code, f["evidence"]).decisions or 0 for f in mine)
    assert {"MW102", "MW401"} <= {r[0] for r in rows if r[1] == "error"}
    # every id a finding names is a link to its page: decisions, eval runs, promotions,
    # aliases, experiments
    for f in expected:
        art = pg.locator(f"article.finding[data-fingerprint='{f['fingerprint']}']")
        hrefs = set(art.locator("a.ref").evaluate_all("els => els.map(e => e.dataset.kind"
                                                      " + ' ' + e.textContent)"))
        for kind, value in facts_of(f["code"], f["evidence"]).refs:
            if kind in ("decision", "eval_run", "promotion", "alias", "experiment"):
                assert f"{kind} {value}" in hrefs, (f["code"], kind, value)
    kinds = set(pg.locator("article.finding a.ref").evaluate_all(
        "els => els.map(e => e.dataset.kind)"))
    assert {"decision", "alias", "eval_run", "experiment"} <= kinds, kinds
    shot(pg, "01-findings")

    # filters and search live in the URL
    pg.select_option("#f-severity", "warning")
    pg.fill("#f-guard", "MW1")
    with pg.expect_navigation():
        pg.click("form.filters button[type=submit]")
    assert "severity=warning" in pg.url and "guard=MW1" in pg.url
    codes = pg.locator("article.finding").evaluate_all("els => els.map(e => e.dataset.code)")
    assert codes and sorted(codes) == sorted(
        f["code"] for f in expected if f["severity"] == "warning" and f["code"][:3] == "MW1")
    assert pg.locator(".summary [data-severity=error]").inner_text() == "0 error"
    shot(pg, "01b-findings-filtered")
    stale = next(f for f in expected if f["code"] == "MW105")
    pg.goto(server.url + "/?" + urlencode({"alias": stale["evidence"]["alias"],
                                           "q": stale["evidence"]["process"]}))
    assert pg.locator("#f-alias").input_value() == stale["evidence"]["alias"]
    assert pg.locator("article.finding").evaluate_all(
        "els => els.map(e => e.dataset.fingerprint)") == [stale["fingerprint"]]
    pg.goto(server.url + "/?q=no+such+finding+anywhere")
    assert pg.locator("#no-match").count() == 1
    pg.goto(server.url + "/#MW105")
    assert pg.locator("details#MW105").evaluate("e => e.open") is True
    pg.click("#MW105 a.guard-docs")  # each guard links to its documentation
    assert pg.url == server.url + "/guards/MW105"
    assert pg.locator("h1").inner_text() == "MW105 stale-fleet"
    assert pg.locator("section.doc h2").all_inner_texts() == [
        "Summary", "What it checks", "Why it matters", "Example", "How to fix", "Configuration"]
    shot(pg, "02-guard-docs")
    pg.go_back()
    stale = pg.locator("article.finding[data-code=MW105]")
    decision_id = stale.locator("a.decision-link").first.inner_text()
    stale.locator("a.decision-link").first.click()
    assert pg.url == f"{server.url}/decisions/{decision_id}"
    assert pg.locator("h1").inner_text() == f"Decision {decision_id}"
    assert pg.locator(".alias-verdict p.verdict").get_attribute("data-verdict") == "disagrees"
    assert "DISAGREES" in pg.locator(".alias-verdict p.verdict").inner_text()
    model = pg.locator("table.digests tr", has_text="model")
    assert model.locator("td.payload").inner_text() == "missing"
    assert pg.locator("p.verdict").first.get_attribute("data-ok") == "false"
    assert pg.locator(".alias-verdict svg.lanes line.mark").count() == 1
    shot(pg, "03-audit-stale-decision")


NAVIGATION = """() => { const n = performance.getEntriesByType("navigation")[0];
  return {response: n.responseEnd - n.requestStart, render: n.domContentLoadedEventEnd,
          state: document.getElementById("run-state").dataset.state}; }"""


def test_findings_render_at_once_while_the_guards_run_in_the_background(page, server, world):
    pg = page
    samples = []
    for _ in range(7):
        pg.goto(server.url + "/")
        samples.append(pg.evaluate(NAVIGATION))
    render = statistics.median(s["render"] for s in samples)
    response = statistics.median(s["response"] for s in samples)
    figures = {"page": "/", "ledger": "demo + page_world", "samples": samples,
               "median_render_ms": round(render, 1), "median_response_ms": round(response, 1),
               "load": os.getloadavg()}
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS.parent / "findings-render.json").write_text(json.dumps(figures, indent=1))
    print("findings page render:", json.dumps(figures))
    assert render < 15_000  # generous: the figure is reported, not asserted tightly

    pg.goto(server.url + "/?fresh=1")  # a run now, in the background
    assert pg.locator("#run-state").get_attribute("data-state") == "running"
    assert pg.locator("#run-progress").is_visible()
    assert pg.locator("#run-again").is_hidden()
    assert pg.locator("article.finding").count() > 0  # the last run's findings meanwhile
    shot(pg, "01c-findings-running")
    pg.wait_for_function("document.getElementById('run-progress-text').textContent"
                         ".includes('/')", timeout=60_000)  # "MW105 (4/24)"
    assert re.search(r"Running the guards: MW\d{3} \(\d+/\d+\)",
                     pg.locator("#run-progress-text").inner_text())
    pg.wait_for_function("document.getElementById('run-state').dataset.state === 'ready'",
                         timeout=180_000)
    assert pg.locator("#run-newer").is_visible()
    with pg.expect_navigation():
        pg.click("#run-newer")
    run, previous = _new_is_what_the_previous_run_did_not_show(pg, world[2])
    assert run.source == "dashboard" and previous is not None
    assert "(dashboard, " in pg.locator(".run-last").inner_text()
    shot(pg, "01d-findings-after-a-background-run")
    pg.set_viewport_size({"width": 390, "height": 844})  # a phone: nothing wider than it
    pg.goto(server.url + "/")
    wide = pg.evaluate("""() => [...document.querySelectorAll('.findings-page *')]
        .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1
                     && e.offsetParent !== null && !e.closest('details:not([open])'))
        .map(e => e.tagName + '.' + e.className).slice(0, 5)""")
    assert wide == [], wide
    shot(pg, "01e-findings-390px")


def test_alias_timeline_shows_which_digest_when_and_the_rollback(page, server, world):
    demo = world[0]
    pg = page
    pg.click("nav a[href='/aliases']")
    lanes = pg.locator("svg.lanes > a text").evaluate_all("els => els.map(e => e.textContent)")
    assert {"chat/v1", "prompt/support@production", "summary/v1", "triage/v1",
            "ranker/v1", "embed/search"} <= set(lanes)
    assert pg.locator("svg.lanes path.rollback").count() == 1
    shot(pg, "04-aliases")
    pg.fill("#alias", "chat/v1")
    pg.click("form.timeline-controls button")
    assert pg.url.startswith(server.url + "/aliases?alias=chat%2Fv1&")  # and the blank range
    # one lane per digest chat/v1 held: five digests, six spans, the rollback back to v1.2
    spans = pg.locator("svg.lanes rect.span").evaluate_all(
        "els => els.map(e => e.dataset.key)")
    d = demo.digests
    assert spans == [d["chat-v1.0"], d["chat-v1.1"], d["chat-v1.2"], d["chat-v1.2"],
                     d["chat-v1.3"], d["chat-v1.3.1"]]
    assert pg.locator("svg.lanes path.rollback").count() == 1
    assert "ROLLBACK" in pg.locator("svg.lanes path.rollback title").text_content()
    assert pg.locator("table.events tr.rollback").count() == 1
    assert pg.locator("table.events tbody tr").count() == 6
    shot(pg, "05-alias-chat-v1")


def test_decision_search_by_subject_time_and_id(page, server, world):
    demo, _extra, store = world
    with store.read() as conn:
        subject, at = conn.exec_driver_sql(
            "SELECT subject, at FROM decisions WHERE id = ?", (demo.audit_decision_id,)).one()
        n = conn.exec_driver_sql("SELECT count(*) FROM decisions WHERE subject = ?",
                                 (subject,)).scalar()
    pg = page
    pg.click("nav a[href='/decisions']")
    pg.fill("#subject", subject)
    pg.click("form.search button")
    rows = pg.locator("table.results tbody tr")
    assert rows.count() == min(n, 50)  # a page; older ones follow
    link = f"table.results a[href='/decisions/{demo.audit_decision_id}']"
    for _page in range(n // 50):  # the first-month decision is on an older page
        if pg.locator(link).count():
            break
        pg.click("#next-page")
    assert pg.locator(link).count() == 1
    shot(pg, "06-decision-search")
    from modelward.timefmt import iso
    pg.fill("#since", iso(at))
    pg.fill("#until", iso(at + 1))
    pg.click("form.search button")
    assert pg.locator("table.results a.decision-link").evaluate_all(
        "els => els.map(e => e.title)") == [demo.audit_decision_id]
    pg.fill("#since", "last tuesday")
    pg.click("form.search button")
    assert "not an ISO 8601" in pg.locator("p.error").inner_text()
    assert pg.locator("p.error .muted").inner_text() == "(since)"
    pg.goto(server.url + "/decisions")
    pg.fill("#id", demo.audit_decision_id)
    pg.click("form.search button")
    assert pg.url == f"{server.url}/decisions/{demo.audit_decision_id}"
    assert pg.locator("p.verdict").first.get_attribute("data-ok") == "true"
    assert pg.locator(".alias-verdict p.verdict").get_attribute("data-verdict") == "agrees"
    assert "Chain block" in pg.locator("body").inner_text()
    shot(pg, "07-audit-first-month")


def test_experiment_balance_srm_smd_and_regimes(page, server):
    pg = page
    pg.click("nav a[href='/experiments']")
    pg.click("a.experiment-link:text('canary')")
    assert pg.url == server.url + "/experiments/canary"
    assert pg.locator("p.verdict").get_attribute("data-alarm") == "true"
    assert "SAMPLE RATIO MISMATCH" in pg.locator("#srm").inner_text()
    assert pg.locator("#srm svg.bars rect.bar").count() == 4  # two arms, observed + expected
    smd = dict(pg.locator("#smd svg.bars rect.bar").evaluate_all(
        "els => els.map(e => [e.dataset.key, parseFloat(e.dataset.value)])"))
    assert set(smd) == {"sessions_30d", "spend_90d"} and all(v > 0.1 for v in smd.values())
    assert pg.locator("#smd svg line.ref").count() == 2  # the ±max_smd lines
    assert pg.locator("#regimes svg.lanes rect.span").count() == 2
    _no_errors(pg)
    shot(pg, "08-experiment-canary")


def test_eval_coverage_draws_production_pairs_against_scored_ones(page, world):
    unscored = sorted(f"{f['evidence']['prompt_digest']}|{f['evidence']['model_digest']}"
                      for f in world[1].findings if f["code"] == "MW301")
    assert unscored  # the demo plants at least one
    pg = page
    pg.click("nav a[href='/coverage']")
    assert pg.locator("[data-unscored]").get_attribute("data-unscored") == str(len(unscored))
    red = pg.locator("svg.bars rect.bar[fill='#d62728']").evaluate_all(
        "els => els.map(e => e.dataset.key)")
    assert sorted(red) == unscored  # MW301's verdict, drawn
    assert pg.locator("svg.bars rect.bar[fill='#2e9e5b']").count() >= 1
    assert pg.locator("table.coverage tr.unscored").count() == len(unscored)
    shot(pg, "09-coverage")
    pg.locator("table.coverage tr.unscored a.decision-link").first.click()
    assert pg.url.startswith(page.url.split("/decisions/")[0] + "/decisions/")
    assert pg.locator("h1").inner_text().startswith("Decision ")


def test_fingerprint_similarity_over_time(page, world):
    runs = world[1].fingerprints.runs
    pg = page
    pg.click("nav a[href='/fingerprints']")
    # the demo ledger fingerprints embedders of its own; follow this world's alias
    pg.click(f"a[href='/fingerprints?alias={quote(world[1].fingerprints.alias, safe='')}']")
    dots = pg.locator("svg.lines circle")
    assert dots.count() == 4
    values = [float(v) for v in dots.evaluate_all("els => els.map(e => e.dataset.value)")]
    assert values[0] == 1.0 and all(v > 0.99 for v in values[1:3]) and values[3] < 0.5
    assert pg.locator("svg.lines circle.changed").count() == 1
    assert pg.locator("svg.lines line.ref").count() == 1
    assert [r.verdict for r in runs] == ["baseline", "inconclusive", "inconclusive", "changed"]
    assert pg.locator("table.fp tr.changed").count() == 1
    shot(pg, "10-fingerprints")


def test_promotion_evidence_opened_from_the_dashboard_is_recorded(page, server, world):
    extra, store = world[1].promotion, world[2]
    pg = page
    pg.click("nav a[href='/promotions']")
    pg.click(f"a.promotion-link[href='/promotions/{extra.request}']")
    assert pg.locator("h1").inner_text() == "Promote ranker/v1 → ranker@v2"
    assert pg.locator(".gates p.verdict").get_attribute("data-passed") == "false"
    assert "opened" in pg.locator(".gates li").evaluate_all(
        "els => els.map(e => e.dataset.gate)")
    assert pg.locator(".evidence .empty").inner_text() == "Nobody has opened it."
    shot(pg, "11-promotion-before-open")
    pg.click("#open-evidence")
    assert pg.url == f"{server.url}/evals/{extra.run}?request={extra.request}"
    assert pg.locator("#open-recorded").inner_text().startswith(f"Your open is recorded ({BOB}")
    shot(pg, "12-evidence")
    with store.read() as conn:
        assert [(e, via) for e, _at, via in promotions.opens(conn, extra.run)] == [
            (BOB, "dashboard")]
    pg.click("text=Back to the promotion request")
    assert pg.locator(".evidence ul.opens li").inner_text().startswith(BOB)
    assert "opened" not in pg.locator(".gates li").evaluate_all(
        "els => els.map(e => e.dataset.gate)")
    assert pg.locator("svg.lanes path.open").count() == 1
    shot(pg, "13-promotion-after-open")


def test_an_unknown_page_object_is_an_error_page_not_a_traceback(page, server):
    pg = page
    resp = pg.goto(server.url + "/decisions/01a17c80-9b54-79d6-9d00-000000000000")
    assert resp.status == 404
    assert "no decision" in pg.locator("p.error").inner_text()
    resp = pg.goto(server.url + "/experiments/nope")
    assert resp.status == 404
    resp = pg.goto(server.url + "/guards/MW999")
    assert resp.status == 422 and "no guard has the code" in pg.locator("p.error").inner_text()


def test_make_demo_ends_by_serving_the_ledger_with_a_one_time_link(browser, world, tmp_path):
    """demo/serve.py, as `make demo` ends on a terminal (a pty here): it prints a log-in URL
    and serves the demo ledger until interrupted."""
    import os
    import pty
    import select
    import subprocess

    from .browser import free_port

    port = free_port()
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELWARD_")}
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pathlib import Path; from demo.serve import "
         f"serve, wanted; assert wanted(); sys.exit(serve(Path({str(world[0].path)!r})))"],
        stdout=follower, stderr=follower, cwd=ROOT,
        env={**env, "MODELWARD_DEMO_PORT": str(port),
             "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)})
    os.close(follower)
    out = b""
    try:
        while b"/login?code=" not in out or not out.endswith(b"\n"):
            ready, _, _ = select.select([leader], [], [], 30)
            assert ready, out.decode()
            out += os.read(leader, 4096)
        link = re.search(rb"open (http://127\.0\.0\.1:\d+/login\?code=\S+)", out)
        assert link, out.decode()
        url = link.group(1).decode()
        assert url.startswith(f"http://127.0.0.1:{port}/login?code=mwl_")
        ctx = browser.new_context()
        pg = ctx.new_page()
        for _ in range(100):  # the server starts after the link is printed
            try:
                pg.goto(url)
                break
            except Exception:  # noqa: BLE001 - connection refused until uvicorn listens
                import time
                time.sleep(0.1)
        confirm_login(pg, f"http://127.0.0.1:{port}/")
        assert pg.locator("header .who span").inner_text() == "demo@acme.example · admin"
        shot(pg, "14-demo-dashboard")
        ctx.close()
    finally:
        proc.terminate()
        proc.wait(10)
        os.close(leader)


def test_the_demo_does_not_serve_when_piped_or_told_not_to(monkeypatch):
    from demo import serve as demo_serve

    assert demo_serve.wanted() is False  # pytest captures stdout: not a terminal
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert demo_serve.wanted() is True
    monkeypatch.setenv("MODELWARD_DEMO_NO_SERVE", "1")
    assert demo_serve.wanted() is False
