"""Eval items that appear in few-shot pools, prompts, corpora or training data.

What it checks
--------------
Two things, with the contamination engine behind ``modelward contamination``:

* every ``[[contamination.pairs]]`` of modelward.toml: the eval set (a path or a
  ``sha256:`` digest) is scanned against each of its sources (a JSONL/CSV/text file, a
  directory, a dataset artifact, a prompt alias or digest, its few-shot examples
  included). One finding per (eval set, source) in which at least ``min_items`` items
  were found, by exact match after normalisation, near-duplicate (MinHash LSH, Jaccard of
  word 5-gram sets confirmed exactly), containment (the share of the item's 5-grams inside
  a longer document) or a shared word 13-gram. Aliases resolve as they stood at the
  check's ``now``; paths are relative to modelward.toml;
* every completed eval run started in the window (the latest per eval set and prompt
  digest): the prompt rendered for each item is scanned for the *other* items of the
  same eval set. A prompt holds its own item, and items that are copies of that item, so
  those do not count. One finding per (eval set, prompt digest).

Why it matters
--------------
The few-shot examples were retrieved from the same store the eval set was drawn from.
Every prompt carried three eval answers; the model copied them, the eval score rose 9
points, and the release that "won" was worse in production. The same happens when eval
items leak into a fine-tuning set, a RAG corpus or a system prompt: the score measures
recall of the answer, not skill, and nobody notices because nothing errors.

Example
-------
``[[contamination.pairs]]`` scans ``evals/support.jsonl`` against the production prompt;
two of its few-shot examples are eval items::

    MW302 eval-contamination  prompt/support@production
      2 of 500 items of eval set evals/support.jsonl appear in prompt/support@production
      (support@38 (sha256:60303ae22b99…)): q-17 (exact, few_shot[0]), q-42 (containment
      0.92, few_shot[2])

and the eval harness rendered those examples into every prompt it scored::

    MW302 eval-contamination  prompt/support@production
      eval run 0193f2c1-… scored support@38 (sha256:60303ae22b99…) on support-evals@3
      (sha256:4f1c0e9a27b3…): the rendered prompts embed 2 of its 500 items: q-17 in 499
      prompts (exact), q-42 in 499 prompts (containment 0.92)

How to fix
----------
Remove the contaminated items from the eval set (or the documents from the pool, corpus
or prompt), register the result and move its alias. Draw few-shot examples from a pool
deduplicated against the eval set. ``modelward contamination --evalset EVALSET --against
SOURCE`` lists every match with its location and the matching text; re-run the eval
afterwards, since the old scores counted recalled answers.

Configuration
-------------
The pairs and the scan options live in ``[contamination]`` (see docs/contamination.md)::

    [contamination]
    ngram = 13            # word n-gram for the n-gram method
    threshold = 0.8       # Jaccard (near-duplicate) and share (containment)
    runs = true           # also scan eval runs' rendered prompts

    [[contamination.pairs]]
    evalset = "evals/support.jsonl"        # or "sha256:…"
    against = ["prompt/support@production", "sha256:…", "data/pool.jsonl"]

In ``[check.MW302]``, ``min_items`` (default 1) is the fewest contaminated items that make
a finding, and ``severity`` overrides the default severity (error), as for every guard.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..digest import is_digest
from ..display import plural, short_digest
from ..errors import ConfigError, NotFoundError, ValidationError
from ..ledger import evals as ledger_evals
from ..settings import Setting
from .finding import Finding
from .registry import declared

CODE = "MW302"
NAME, SEVERITY, STATUS = declared(CODE)  # from its row of the code table
OPTIONS = (Setting("min_items", "int", 1,
                   "Fewest contaminated items of one eval set that make a finding.", minimum=1),)

FIX = ("remove the contaminated items from the eval set (or the documents from the source), "
       "register the result and move its alias; `modelward contamination --evalset … "
       "--against …` lists every match")
RUN_FIX = ("draw few-shot examples from a pool deduplicated against the eval set, then re-run "
           "the eval; `modelward contamination --evalset EVALSET --against PROMPT` shows the "
           "overlap")
EXAMPLES = 3  # named in the message
EVIDENCE = 20  # matches listed in the evidence


def _pairs_config(view):
    from ..evals.contamination.scan import load_config

    return load_config(view.settings.section("contamination"),
                       str(view.settings.config_path or "modelward.toml"))


def unconfigured(view, config) -> str | None:
    """Why MW302 cannot run at all: no pairs to scan and eval-run scanning turned off."""
    cfg = _pairs_config(view)
    if not cfg.pairs and not cfg.runs:
        return "no [[contamination.pairs]] in the config and contamination.runs = false"
    return None


def limited(view, config) -> str | None:
    """What MW302 leaves unchecked for lack of configuration (it still runs)."""
    if not _pairs_config(view).pairs:
        return ("no [[contamination.pairs]] in the config: only eval runs' prompts were "
                "scanned, no eval set against a pool, prompt or corpus")
    return None


def check(view, config) -> Iterator[Finding]:
    # imported here: numpy loads only when MW302 runs, not for every `modelward check`
    from ..evals.contamination.scan import load_config, scan

    source = str(view.settings.config_path or "modelward.toml")
    cfg = load_config(view.settings.section("contamination"), source)
    for n, pair in enumerate(cfg.pairs, start=1):
        where = f"{source}: contamination.pairs[{n}]"
        try:
            items = view.evalset_items(pair.evalset)
        except (ValidationError, NotFoundError) as exc:
            raise ConfigError(f"{where}.evalset: {_detail(exc)}", hint=exc.hint) from None
        for ref in pair.against:
            try:
                src = view.documents(ref)
            except (ValidationError, NotFoundError) as exc:
                raise ConfigError(f"{where}.against {ref!r}: {_detail(exc)}",
                                  hint=exc.hint) from None
            report = scan(items, [src], params=pair.params)
            if len(report.contaminated) >= config["min_items"]:
                yield _pair_finding(view, pair.evalset, ref, src.digest, report)
    if cfg.runs:
        yield from _runs(view, cfg.params, config["min_items"])


def _detail(exc) -> str:
    return exc.detail if isinstance(exc, ValidationError) else exc.message


def _label(view, ref: str, digest: str | None) -> str:
    if is_digest(ref):
        return view.label(ref)
    return f"{ref} ({view.label(digest)})" if digest else ref


def _examples(report) -> str:
    parts = []
    for hit in report.contaminated[:EXAMPLES]:
        m = hit.best
        how = m.method if m.score == 1.0 else f"{m.method} {m.score:.2f}"
        parts.append(f"{hit.item_id} ({how}, {m.locator})")
    more = len(report.contaminated) - EXAMPLES
    return ", ".join(parts) + (f" and {more} more" if more > 0 else "")


def _matches(report) -> list[dict]:
    return [{"item": hit.item_id, "documents": hit.documents, "method": hit.best.method,
             "score": hit.best.score, "locator": hit.best.locator, "doc_id": hit.best.doc_id,
             "span": hit.best.span} for hit in report.contaminated[:EVIDENCE]]


def _pair_finding(view, evalset: str, ref: str, digest: str | None, report) -> Finding:
    n = len(report.contaminated)
    return Finding(
        CODE, SEVERITY, ref,
        f"{n:,} of {plural(report.items, 'item')} of eval set {_label(view, evalset, None)} "
        f"appear in {_label(view, ref, digest)}: {_examples(report)}",
        evidence={"evalset": evalset, "source": ref, "source_digest": digest,
                  "items": report.items, "contaminated": n, "documents": report.documents,
                  "by_method": report.by_method(), "matches": _matches(report)},
        fix=FIX, identity=("evalset", "source"))


def _runs(view, params, min_items: int) -> Iterator[Finding]:
    from ..evals.contamination.scan import scan_rendered

    rows = ledger_evals.completed_runs_started(view, since=view.since, until=view.now)
    latest: dict[tuple, tuple] = {}
    for row in rows:
        latest.setdefault((row.evalset_digest, row.prompt_digest), row)
    for (evalset, prompt), row in sorted(latest.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        rendered = ledger_evals.rendered_prompts(view, row.id)
        if not rendered:
            continue
        try:
            items = view.evalset_items(evalset)
        except (ValidationError, NotFoundError):
            continue  # the payload is gone (MW102 judges retention); nothing to compare
        report = scan_rendered(items, [(i, t) for i, t in rendered],
                               name=f"eval run {row.id}", params=params)
        if len(report.contaminated) < min_items:
            continue
        embedded = ", ".join(
            f"{hit.item_id} in {plural(hit.documents, 'prompt')} ({hit.best.method}"
            + ("" if hit.best.score == 1.0 else f" {hit.best.score:.2f}") + ")"
            for hit in report.contaminated[:EXAMPLES])
        more = len(report.contaminated) - EXAMPLES
        if more > 0:
            embedded += f" and {more} more"
        prompt_label = view.label(prompt) if prompt else "(no prompt)"
        yield Finding(
            CODE, SEVERITY, row.prompt_alias or (short_digest(prompt) if prompt else row.id),
            f"eval run {row.id} scored {prompt_label} on {view.label(evalset)}: the rendered "
            f"prompts embed {len(report.contaminated):,} of its {plural(report.items, 'item')}: "
            f"{embedded}",
            evidence={"run_id": row.id, "evalset_digest": evalset, "prompt_digest": prompt,
                      "prompt_alias": row.prompt_alias, "items": report.items,
                      "embedded": len(report.contaminated), "matches": _matches(report)},
            fix=RUN_FIX, identity=("evalset_digest", "prompt_digest"))
