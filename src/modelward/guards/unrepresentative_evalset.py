"""An eval set's segment or source mix diverges from production traffic.

What it checks
--------------
Each live eval set is compared with the decisions recorded in the window (the shorter of
``window`` and the check window). An item's segments are its own ``segments`` laid over
those of the decision it came from (``decision_id``). It fires when

* a segment value carrying at least ``min_traffic_share`` of traffic (default 10%) has
  less than ``min_ratio`` (default half) of that share among the eval set's items, by
  more than sampling explains (below); one finding per segment, with both shares, the
  ratio, the segment's exact p-value, the total variation distance and the chi-square
  p-value of the whole dimension; items or decisions without the key are not a segment;
  this part is skipped while the window holds fewer than ``min_decisions`` decisions;
* more than ``max_source_share`` (default 50%) of the items come from one feedback
  source (``thumbs_up`` or ``thumbs_down`` by default; the items' ``source`` field).

Live eval sets are those named in ``evalsets`` or, by default, every ``evalset``
artifact that an alias currently points at or that a completed eval run started in the
window used. Traffic is counted once per run, in SQL, grouped by the segments column.
The comparison is ``modelward evalset compare``'s, so the two cannot disagree.

**How it decides.** A small eval set is a small sample: 20 items drawn at random from
traffic hold a 12% segment at most once (less than half its share) 29% of the time, so
a fixed ratio rule called 45-83% of uniform random samples of 20 to 40 items
unrepresentative. Each segment judged (every value of every compared key carrying at
least ``min_traffic_share`` of traffic) gets a one-sided exact p-value: how likely an eval
count this low is, were the items drawn from the same population as the traffic
(Fisher's exact test, the hypergeometric lower tail, which also allows for a small
window's own noise). Holm's method adjusts these over all the segments judged in the
eval set, and a segment fires only when its adjusted p-value is at most ``alpha`` and its
ratio is below ``min_ratio``. So ``alpha`` (default 1%) bounds the chance that a uniform
random sample of traffic is reported at all, however many keys are compared; simulated
(``bench/calib/mw303.py``) it stays below it at 20, 40 and 200 items (figures in
docs/representativeness.md).

**Known limits.** A small set can only be told from traffic when the gap is large: with
the defaults and ten segments judged, 20 items show a 30% segment as under-represented
only when it has no item, and a 10% segment never (0 of 20 is 12% likely by chance); at
200 items a 10% segment with 7 or fewer items fires. The test asks whether the items could be a random
sample of traffic; a set curated on purpose (hard cases only) fails it by design.

**Why the source rule is a limit, not a test.** A segment's share of traffic is unknown
and the eval set is a sample of it, so the segment part must allow for sampling noise. An
item's source is not sampled: it is recorded on the item (how it was collected), and the
set's share of items from one feedback channel is counted exactly, over the whole set
being evaluated. There is no population share to estimate and no chance to allow for;
what biases the eval is the share the set actually holds (a channel's selection: the
happy users who click thumbs-up), so the rule states a limit on that share. A set drawn
at random from traffic (``evalset rebuild``, source ``sampled``) never trips it, and
``bench/calib/mw303.py`` includes such sets with half their items from thumbs-up feedback
in its null cases; a set one item over the limit always fires.

Why it matters
--------------
The eval set was curated from thumbs-up answers. Happy users were mostly on the free
tier asking about billing; enterprise customers, 30% of traffic, asked about SSO and
audit logs and rarely clicked thumbs up. Every release passed the eval; enterprise
quality drifted down for two quarters until the renewals did not come.

Example
-------
``support-evals`` holds 200 items, 180 of them curated from thumbs-up feedback::

    MW303 unrepresentative-evalset  support-evals@v2 (sha256:4f1c0e9a27b3…)
      support-evals@v2 (sha256:4f1c0e9a27b3…) under-represents tier=enterprise: 30.0% of
      12,408 decisions since 2026-02-01T00:00:00Z, 2.5% of 200 items (ratio 0.08; below
      0.5; exact p = 7.3e-24, 7.3e-23 adjusted over 10 segments); tier: total variation
      0.275, chi-square p = 3.1e-18
    MW303 unrepresentative-evalset  support-evals@v2 (sha256:4f1c0e9a27b3…)
      support-evals@v2 (sha256:4f1c0e9a27b3…) takes 90.0% of its 200 items from thumbs_up
      feedback (more than 50%)

How to fix
----------
Rebuild the eval set from traffic: ``modelward evalset rebuild --size 200 --stratify
tier,topic --window 30d --name support-evals`` draws a stratified sample of production
decisions, links every item to its decision and registers it with its lineage; label the
items and point the eval alias at it. ``modelward evalset compare EVALSET`` shows the full
mix. Keep feedback-sourced items as a separate, named slice instead of the main set.

Configuration
-------------
In ``[check.MW303]``::

    [check.MW303]
    min_traffic_share = 0.10    # judge segments with at least this share of traffic
    min_ratio = 0.5             # fire below this times the traffic share
    alpha = 0.01                # false-alarm rate per eval set (exact test, Holm)
    max_source_share = 0.5      # fire above this share of items from one feedback source
    feedback_sources = ["thumbs_up", "thumbs_down"]
    evalsets = ["evals/support", "sha256:…", "support-evals"]  # default: the live ones
    by = ["tier", "topic", "tier+topic"]  # default: every key with at most 50 values
    window = "30d"              # traffic compared with (the check window, if shorter)
    min_decisions = 100         # fewer decisions in the window: segments are not judged

``min_traffic_share``, ``min_ratio``, ``alpha``, ``max_source_share``, ``feedback_sources``,
``evalsets`` (digests, aliases or names of evalset artifacts), ``by``, ``window`` and
``min_decisions`` as above; ``severity`` overrides the default severity (warning), as for
every guard.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..digest import is_digest
from ..errors import ConfigError, ValidationError
from ..evals.harness.evalsets import parse_evalset
from ..evals.representativeness import compare as rep
from ..ledger import artifacts as ledger_artifacts
from ..ledger import evals as ledger_evals
from ..settings import Setting
from ..timefmt import iso
from .finding import Finding
from .registry import declared

CODE = "MW303"
NAME, SEVERITY, STATUS = declared(CODE)  # from its row of the code table
OPTIONS = (
    Setting("min_traffic_share", "float", 0.10,
            "Judge segments carrying at least this share of traffic."),
    Setting("min_ratio", "float", 0.5,
            "Fire when a segment's eval share is below this times its traffic share."),
    Setting("alpha", "float", 0.01,
            "False-alarm rate per eval set: a random sample of traffic is reported at most "
            "this often (exact test per segment, Holm over the segments)."),
    Setting("max_source_share", "float", 0.5,
            "Fire when more than this share of items comes from one feedback source."),
    Setting("feedback_sources", "list", list(rep.FEEDBACK_SOURCES),
            "Item sources that count as feedback."),
    Setting("evalsets", "list", None,
            "Eval sets to judge (digests, aliases or names); default: the live ones."),
    Setting("by", "list", None, "Segment keys to compare (tier+topic: combined cells)."),
    Setting("window", "duration", "30d", "How much production traffic to compare with."),
    Setting("min_decisions", "int", 100,
            "Fewest decisions in the window for the segment rule to judge.", minimum=0),
)

FIX = ("rebuild it with `modelward evalset rebuild --stratify …` (a stratified sample of "
       "production decisions) and see `modelward evalset compare` for the full mix")


def _configured(view, names: list[str]) -> list[str]:
    current = view.alias_targets()
    out = []
    for name in names:
        if is_digest(name):
            out.append(name)
        elif name in current:
            out.append(current[name])
        else:
            found = ledger_artifacts.latest_named(view, "evalset", name)
            if found is None:
                raise ConfigError(f"check.MW303.evalsets: {name!r} is not a digest, an alias or "
                                  "the name of an evalset artifact")
            out.append(found)
    return list(dict.fromkeys(out))


def _live(view, start: int) -> list[str]:
    current = view.alias_targets()
    used = ledger_evals.evalsets_run(view, since=start, until=view.now)
    return sorted(set(current.values()) | set(used))


def check(view, config) -> Iterator[Finding]:
    start = max(b for b in (view.since, view.now - config["window"]) if b is not None)
    until = view.now + 1  # decisions at `now` count
    wanted = (_configured(view, config["evalsets"]) if config["evalsets"]
              else _live(view, start))
    arts = {d: a for d, a in view.artifacts(wanted).items() if a.kind == "evalset"}
    if not arts:
        return
    dims = rep.parse_by(config["by"], field="check.MW303.by") if config["by"] else None
    tr = rep.traffic(view, start, until)
    for digest in sorted(arts):
        subject = view.label(digest)
        data = view.payload(arts[digest])
        try:
            items = parse_evalset(data, name=digest) if data is not None else None
        except ValidationError as exc:
            items, problem = None, f"is not a valid eval set ({exc.message})"
        else:
            problem = "has no readable payload (missing or corrupt)"
        if items is None:
            yield Finding(CODE, SEVERITY, subject, f"cannot judge {subject}: it {problem}",
                          evidence={"evalset": digest, "problem": problem},
                          fix="register the eval set file again",
                          identity=("evalset", "problem"))
            continue
        comp = rep.compare(view, items, since=start, until=until, by=dims, traffic_counts=tr)
        if tr.total >= config["min_decisions"]:
            if comp.dimensions and not any(d.labelled for d in comp.dimensions):
                problem = "carries no segments"
                yield Finding(
                    CODE, SEVERITY, subject,
                    f"cannot compare {subject} with traffic: none of its {comp.items:,} items "
                    f"carries a segment ({', '.join('+'.join(d.dim) for d in comp.dimensions)})"
                    " or links to a recorded decision",
                    evidence={"evalset": digest, "problem": problem, "items": comp.items,
                              "by": ["+".join(d.dim) for d in comp.dimensions]},
                    fix="give items segments, or a decision_id linking the decision they came "
                        "from; or rebuild the set with `modelward evalset rebuild`",
                    identity=("evalset", "problem"))
            yield from _segments(subject, digest, comp, config)
        for source, n, share in rep.dominant_sources(comp, sources=config["feedback_sources"],
                                                     max_share=config["max_source_share"]):
            yield Finding(
                CODE, SEVERITY, subject,
                f"{subject} takes {share:.1%} of its {comp.items:,} items from {source} "
                f"feedback (more than {config['max_source_share']:.0%})",
                evidence={"evalset": digest, "source": source, "items": comp.items,
                          "source_items": n, "source_share": round(share, 4),
                          "max_source_share": config["max_source_share"]},
                fix=FIX, identity=("evalset", "source"))


def _segments(subject, digest, comp, config) -> Iterator[Finding]:
    tr = comp.traffic
    for short in rep.under_represented(comp, min_traffic_share=config["min_traffic_share"],
                                       min_ratio=config["min_ratio"], alpha=config["alpha"]):
        dim, s = short.dim, short.share
        label = rep.segment_label(dim.dim, s.cell)
        p = "-" if dim.p_value is None else f"{dim.p_value:.2g}"
        yield Finding(
            CODE, SEVERITY, subject,
            f"{subject} under-represents {label}: {s.traffic_share:.1%} of {tr.total:,} "
            f"decisions since {iso(tr.since)}, {s.eval_share:.1%} of {comp.items:,} items "
            f"(ratio {s.ratio:.2f}; below {config['min_ratio']:g}; exact p = "
            f"{short.p_value:.2g}, {short.adjusted:.2g} adjusted over {short.judged} "
            f"segments); {'+'.join(dim.dim)}: total variation {dim.tvd:.3f}, chi-square "
            f"p = {p}",
            evidence={"evalset": digest, "segment": label, "by": "+".join(dim.dim),
                      "traffic_share": round(s.traffic_share, 4),
                      "eval_share": round(s.eval_share, 4), "ratio": round(s.ratio, 4),
                      "segment_decisions": s.traffic, "decisions": tr.total,
                      "segment_items": s.items, "items": comp.items,
                      "since": iso(tr.since), "tvd": round(dim.tvd, 4),
                      "p_value": dim.p_value, "segment_p_value": short.p_value,
                      "adjusted_p_value": short.adjusted, "segments_judged": short.judged,
                      "alpha": config["alpha"]},
            fix=FIX, identity=("evalset", "segment"))
