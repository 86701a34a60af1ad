"""The experiment and promotion pages in Debian's Chromium, and every page at 390 px: the
effect per regime with its metric, interval and axis; balance as MW402 judges it; the
promotion timeline's marks and run links; experiments whose names hold ``/``, ``%``,
spaces, Unicode or dots; the folded menu. Also measures each page's render time on the
demo ledger (written to test-artifacts/render-times.json; never asserted). Screenshots
land in test-artifacts/screenshots/."""

from __future__ import annotations

import json
import re
import statistics

import pytest

from modelward.ledger import experiments as ledger_experiments
from modelward.ledger import promotions
from modelward.rollout.checks import experiment_of
from modelward.rollout.regimes import regime_report

from .browser import ROOT, shot
from .test_pages import browser, server, world  # noqa: F401  (the fixtures)

pytestmark = pytest.mark.slow
NAMES = ["team/exp 1", "50%off", "ünï/çødé", "a/../b", "x/check", "100%2F", ".."]
NARROW = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def named(world):  # noqa: F811
    """Experiments with awkward names, exposed on users of the demo's pre-period file (the
    population MW402 and the page judge every experiment on)."""
    store = world[2]
    with store.write() as conn:
        for i, name in enumerate(NAMES):
            ledger_experiments.create(conn, name, f"salt-{i}",
                                      [("control", 1.0), ("treatment", 1.0)],
                                      meta={"metric": "clicks"})
    for name in NAMES:
        rows = [ledger_experiments.normalize_exposure({
            "experiment": name, "subject": f"u-{k}", "arm": "treatment" if k % 2 else "control",
            "metric": float(k % 7)}) for k in range(1, 81)]
        ledger_experiments.append_exposures(store, rows)
    return NAMES


def _login(browser, server, viewport):  # noqa: F811
    """Logged in as bob (an approver) through a one-time link, landing on the experiments
    (the findings page computes every guard on its first visit: slow on a loaded box)."""
    ctx = browser.new_context(viewport=viewport)
    pg = ctx.new_page()
    pg.set_default_timeout(60_000)
    pg.goto(server.login_url(role="approver", email="bob@example.com")
            + "&next=%2Fexperiments")
    with pg.expect_navigation(url=server.url + "/experiments", timeout=120_000):
        pg.click("#continue")
    return pg


@pytest.fixture
def page(browser, server):  # noqa: F811
    pg = _login(browser, server, {"width": 1280, "height": 900})
    yield pg
    pg.context.close()


def test_effect_per_regime_has_its_metric_interval_and_axis_and_balance_is_mw402s(
        page, server, world):  # noqa: F811
    demo, extra, store = world
    pg = page
    pg.goto(server.url + "/experiments/refund-flow-canary")
    assert pg.locator("h1").inner_text() == "Experiment refund-flow-canary"
    assert pg.locator("#effects .metric").inner_text() == "resolved"
    with store.read() as conn:
        reg = regime_report(conn, experiment_of(conn, "refund-flow-canary"))
    want = {f"{i.arm}:{label}": e for i in reg.interactions for label, e in i.effects.items()}
    drawn = pg.locator("svg.forest g.effect").evaluate_all(
        "els => els.map(e => [e.dataset.key, +e.dataset.effect, +e.dataset.low,"
        " +e.dataset.high])")
    assert {k for k, *_ in drawn} == set(want) and drawn
    for key, effect, low, high in drawn:
        e = want[key]
        assert (effect, low, high) == pytest.approx((e["effect"], e["low"], e["high"]))
        assert low < effect < high
    axis = pg.locator("svg.forest text.axis-lbl").text_content()
    assert axis.startswith("resolved: treatment − control") and "95% interval" in axis
    assert pg.locator("svg.forest text.tick").count() >= 3
    assert pg.locator("svg.forest line.zero").count() == 1
    assert pg.locator("table.effects tbody tr").count() == len(want)
    # balance: the covariates and SMDs MW402 reports on this experiment, and never
    # "not checked" while the guard checked
    mw402 = {f["evidence"]["covariate"]: f["evidence"]["smd"] for f in extra.findings
             if f["code"] == "MW402" and f["evidence"].get("experiment") == "refund-flow-canary"}
    assert set(mw402) == {"sessions_30d", "spend_90d"}
    rows = pg.locator("table.balance tbody tr.flagged").evaluate_all(
        "els => els.map(e => [e.dataset.covariate, e.cells[4].textContent])")
    assert {c: float(v) for c, v in rows} == {c: pytest.approx(v, abs=6e-4)
                                             for c, v in mw402.items()}
    basis = pg.locator("#balance-basis").inner_text()
    assert "MW402" in basis and "not checked" not in pg.locator("#smd").inner_text()
    shot(pg, "20-experiment-effect-interval")
    # the balanced control: MW402 is silent and the page judged it all the same
    pg.goto(server.url + "/experiments/answer-style")
    assert not any(f["code"] == "MW402" and f["evidence"].get("experiment") == "answer-style"
                   for f in extra.findings)
    assert pg.locator("table.balance tbody tr").count() == 2
    assert pg.locator("table.balance tr.flagged").count() == 0
    assert "Judged as MW402 judges it" in pg.locator("#balance-basis").inner_text()


def test_experiments_named_with_slashes_percent_unicode_and_dots_open(
        page, server, named):  # noqa: F811
    pg = page
    for name in named:
        pg.goto(server.url + "/experiments")
        link = pg.locator("a.experiment-link", has_text=re.compile(
            "^" + re.escape(name) + "$"))
        assert link.count() == 1, name
        link.click()
        pg.wait_for_load_state()
        assert pg.locator("h1").inner_text() == f"Experiment {name}", (name, pg.url)
        assert pg.locator("#effects .metric").inner_text() == "clicks", name
    assert pg.url == server.url + "/experiments?name=.."  # all dots: no path segment can
    shot(pg, "21-experiment-named-dots")
    pg.goto(server.url + "/experiments/team/exp%201")  # slashes typed as they are
    assert pg.locator("h1").inner_text() == "Experiment team/exp 1"
    shot(pg, "22-experiment-with-slash")


def test_promotion_timeline_marks_request_opens_reviews_and_approval(
        page, server, world):  # noqa: F811
    store = world[2]
    with store.read() as conn:
        router = promotions.list_requests(conn, alias="router/v1")[0]
    pg = page
    pg.goto(server.url + "/promotions")
    assert pg.locator(f"a.run-link[href^='/evals/{router.evidence_run_id}']").count() == 1
    pg.click(f"a.promotion-link[href='/promotions/{router.id}']")
    lanes = pg.locator("section.timeline svg.lanes")
    assert lanes.locator("path.request").count() == 1
    assert lanes.locator("path.approval").count() == 1
    assert lanes.locator("path.open").count() == 0  # approved without opening: a blank lane
    xs = [float(re.match(r"M([\d.]+),", d).group(1)) + 6 for d in (
        lanes.locator("path.request").get_attribute("d"),
        lanes.locator("path.approval").get_attribute("d"))]
    width = float(lanes.get_attribute("viewBox").split()[2])
    assert xs[1] - xs[0] > width / 4  # four minutes apart is a quarter of the axis or more
    events = pg.locator("table.events tbody tr")
    assert events.count() == 2
    assert events.nth(1).locator("td").nth(1).inner_text() == "+4m"
    assert "approved with an override" in events.nth(1).inner_text()
    # every eval run id on the page is a link, in the gates' and MW203's messages too
    for where in ("table.events", ".evidence", ".gates", "section:has(h2:text('Reviews'))"):
        assert pg.locator(f"{where} a.run-link").count() >= 1, where
    shot(pg, "23-promotion-timeline")
    pg.locator("table.events a.run-link").first.click()
    assert pg.url.startswith(f"{server.url}/evals/{router.evidence_run_id}")
    assert pg.locator("h1").inner_text() == f"Eval run {router.evidence_run_id}"


def test_a_pending_request_shows_its_reviews_as_marks(page, server, world):  # noqa: F811
    extra = world[1].promotion
    with world[2].read() as conn:
        reviews = promotions.reviews(conn, request_ids=[extra.request])
    pg = page
    pg.goto(f"{server.url}/promotions/{extra.request}")
    lanes = pg.locator("section.timeline svg.lanes")
    assert lanes.locator("path.review").count() == sum(r.outcome == "refused" for r in reviews)
    assert lanes.locator("path.approval").count() == 0
    assert "still pending now" in pg.locator("section.timeline .legend").inner_text()


def _pages(world, named):  # noqa: F811
    demo, extra, store = world
    with store.read() as conn:
        router = promotions.list_requests(conn, alias="router/v1")[0]
    return {"findings": "/", "aliases": "/aliases", "alias chat/v1": "/aliases?alias=chat%2Fv1",
            "decisions": "/decisions", "audit": f"/decisions/{demo.audit_decision_id}",
            "experiments": "/experiments", "experiment": "/experiments/refund-flow-canary",
            "experiment named": "/experiments/team%2Fexp%201", "coverage": "/coverage",
            "fingerprints": "/fingerprints", "promotions": "/promotions",
            "promotion": f"/promotions/{router.id}",
            "eval run": f"/evals/{router.evidence_run_id}", "guard": "/guards/MW402"}


def test_every_page_is_usable_at_390px_and_the_menu_folds(browser, server, world,  # noqa: F811
                                                           named):
    pg = _login(browser, server, NARROW)
    for label, path in _pages(world, named).items():
        resp = pg.goto(server.url + path, timeout=180_000)  # findings: guards on first visit
        assert resp.status == 200, (label, resp.status)
        assert pg.locator("header.top nav").is_hidden(), label
        # no horizontal page scroll: wide tables and charts scroll in their own container
        over = pg.evaluate("document.documentElement.scrollWidth - "
                           "document.documentElement.clientWidth")
        assert over <= 0, (label, over)
        shot(pg, "390-" + label.replace(" ", "-").replace("/", "-"))
    pg.goto(server.url + "/experiments")
    pg.click("label.nav-button")
    assert pg.locator("header.top nav").is_visible()
    assert pg.locator("header.top .who").is_visible()
    shot(pg, "390-menu-open")
    pg.click("header.top nav a[href='/promotions']")
    assert pg.url == server.url + "/promotions"
    assert pg.locator("header.top nav").is_hidden()  # a new page starts folded
    pg.context.close()


def test_render_times_on_the_demo_ledger(browser, server, world, named):  # noqa: F811
    """Median of five loads per page (the navigation's response end and DOM-ready, as
    Chromium measures them), written to test-artifacts/render-times.json for the notes;
    a figure, never an assertion on speed."""
    pg = _login(browser, server, {"width": 1280, "height": 900})
    out = {}
    for label, path in _pages(world, named).items():
        runs = []
        for _ in range(5):
            assert pg.goto(server.url + path, timeout=180_000).status == 200, label
            runs.append(pg.evaluate(
                "(() => { const n = performance.getEntriesByType('navigation')[0];"
                " return [n.responseEnd - n.startTime, n.domContentLoadedEventEnd"
                " - n.startTime]; })()"))
        out[label] = {"path": path,
                      "server_ms": round(statistics.median(r[0] for r in runs), 1),
                      "dom_ready_ms": round(statistics.median(r[1] for r in runs), 1)}
    path = ROOT / "test-artifacts" / "render-times.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(out, indent=2, ensure_ascii=False))
    assert set(out) == set(_pages(world, named))
    pg.context.close()
