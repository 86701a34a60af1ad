"""The alias timeline page on every backend (HTML read with the standard parser; the
browser tests draw it in Chromium): events newest first across aliases, one colour per
digest with none repeated and none red, a six-hour incident visible on an eight-month axis,
deletions as crosses, a time range, and ``at=`` stating what each alias resolved to."""

from __future__ import annotations

import colorsys
import re

import pytest
from fastapi.testclient import TestClient

from modelward.ledger import aliases, artifacts
from modelward.timefmt import iso
from modelward.web.app import create_app
from modelward.web.auth import COOKIE
from modelward.web.pages import charts

from . import apiclient

api = apiclient.api  # the fixture
HOUR = 3_600_000_000
DAY = 24 * HOUR
T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z


@pytest.fixture
def timeline(api):
    """a/v1 moves through 8 digests over eight months, one of them served for six hours
    until rolled back; b/v1 holds 5 more, then is deleted."""
    store = api.store
    digests = [artifacts.register_bytes(store, "model", f"w{i}".encode(), name="m",
                                        version=f"v{i}", at=T0 - DAY).artifact.digest
               for i in range(13)]
    with store.write() as conn:
        for i in range(7):
            aliases.set_alias(conn, "a/v1", digests[i], at=T0 + i * 30 * DAY)
        aliases.set_alias(conn, "a/v1", digests[7], at=T0 + 200 * DAY)
        aliases.set_alias(conn, "a/v1", digests[6], at=T0 + 200 * DAY + 6 * HOUR,
                          reason="bad answers")
        for i in range(5):
            aliases.set_alias(conn, "b/v1", digests[8 + i], at=T0 + 15 * DAY + i * 40 * DAY)
        aliases.delete_alias(conn, "b/v1", at=T0 + 230 * DAY)
    page = TestClient(create_app(store.settings, store=store))
    page.cookies.set(COOKIE, api.secrets["reader"])
    return page, digests


def _reddish(color: str) -> bool:
    """A saturated colour with a hue within 25 degrees of red (a brown or a grey is not)."""
    if color.startswith("hsl("):
        hue, sat = (float(v.strip(" %)")) for v in color[4:].split(",")[:2])
        sat /= 100
    else:
        r, g, b = (int(color[i:i + 2], 16) / 255 for i in (1, 3, 5))
        h, _l, sat = colorsys.rgb_to_hls(r, g, b)
        hue = h * 360
    return (hue < 25 or hue > 335) and sat > 0.35


def test_events_newest_first_and_colours_unique_never_red(timeline):
    page, digests = timeline
    html = page.get("/aliases").text
    ats = [int(a) for a in re.findall(r'<tr class="[a-z]+" data-at="(\d+)"', html)]
    assert len(ats) == 15 and ats == sorted(ats, reverse=True)  # across both aliases
    legend = dict(re.findall(r'data-digest="(sha256:[0-9a-f]+)" data-color="([^"]+)"', html))
    assert set(legend) == set(digests)
    assert len(set(legend.values())) == len(digests)  # no two digests share a colour
    for color in legend.values():
        assert not _reddish(color), color  # never a red: red marks rollbacks
    for d, color in legend.items():  # the chart uses the legend's colours
        assert re.search(rf'fill="{re.escape(color)}" data-key="{d}"', html)


def test_distinct_colours_stay_distinct_and_not_red_for_many_digests():
    colors = charts.distinct_colors(f"d{i}" for i in range(300))
    assert len(set(colors.values())) == 300
    assert not any(_reddish(c) for c in colors.values())
    assert _reddish("#d62728") and _reddish("#e15759")  # the rollback red, PALETTE's red
    assert charts.distinct_colors(["x", "y", "x"]) == {"x": charts.SAFE_PALETTE[0],
                                                       "y": charts.SAFE_PALETTE[1]}


def test_a_six_hour_incident_is_visible_on_an_eight_month_axis_and_zooms(timeline):
    page, digests = timeline
    html = page.get("/aliases").text
    (band,) = re.findall(r'<rect class="incident" x="[\d.]+" y="\d+" width="([\d.]+)"', html)
    assert float(band) >= charts.INCIDENT_MIN_PX  # six hours of 230 days would be 0.5 px
    assert "incident on a/v1: m@v7 served for 6h" in html
    zoom = re.search(r'<a class="zoom" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    zoomed = page.get(zoom).text
    (band,) = re.findall(r'<rect class="incident" x="[\d.]+" y="\d+" width="([\d.]+)"',
                         zoomed)
    assert float(band) > 100  # zoomed in, the six hours fill a good part of the axis
    ats = [int(a) for a in re.findall(r'data-at="(\d+)"', zoomed)]
    assert ats == [T0 + 200 * DAY + 6 * HOUR, T0 + 200 * DAY]  # only the events in range
    assert "13 events outside this range" in zoomed


def test_a_deletion_is_a_cross_not_a_span(timeline):
    page, digests = timeline
    html = page.get("/aliases?alias=b/v1").text
    assert html.count('<path class="delete"') == 1 and "b/v1 DELETED at" in html
    spans = re.findall(r'<rect class="span [a-z]+"', html)
    assert len(spans) == 5  # one per move; the deletion draws none
    assert '<tr class="delete"' in html


def test_at_states_what_each_alias_resolved_to(timeline):
    page, digests = timeline
    at = iso(T0 + 200 * DAY + 3 * HOUR)  # inside the incident
    html = page.get("/aliases", params={"alias": "a/v1", "at": at}).text
    assert re.search(rf'<p class="resolved" data-digest="{digests[7]}">', html)
    assert "m@v7" in html and 'class="mark"' in html
    html = page.get("/aliases", params={"at": at}).text
    rows = dict(re.findall(r'<tr data-alias="([^"]+)" data-digest="([^"]+)">', html))
    assert rows == {"a/v1": digests[7], "b/v1": digests[12]}
    html = page.get("/aliases", params={"at": iso(T0 + 231 * DAY)}).text
    rows = dict(re.findall(r'<tr data-alias="([^"]+)" data-digest="([^"]+)">', html))
    assert rows == {"a/v1": digests[6]}  # b/v1 was deleted by then
    html = page.get("/aliases", params={"alias": "b/v1", "at": iso(T0 + 231 * DAY)}).text
    assert '<p class="resolved" data-digest="">' in html


@pytest.mark.parametrize(("params", "needle"), [
    ({"at": "noon"}, "(at)"), ({"since": "2026-13-01T00:00:00Z"}, "(since)"),
    ({"since": "2026-06-01T00:00:00Z", "until": "2026-05-01T00:00:00Z"}, "must be after")])
def test_a_bad_range_or_moment_is_a_422_page(timeline, params, needle):
    page, _ = timeline
    resp = page.get("/aliases", params=params)
    assert resp.status_code == 422 and needle in resp.text and "Traceback" not in resp.text
