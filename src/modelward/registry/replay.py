"""Replay a decision with exactly what produced it, and say whether the output is the same.

:func:`replay` reads the decision, checks that everything a re-run needs is still
retained (the model's payload present and verified, or its vendor id not retired; the
prompt's template in the blob store; the input text kept and not erased) and names each
thing that is not, with since when. Then it calls the runner once, the eval harness's
runner protocol (``modelward.endpoints``): the stored input, rendered through the
prompt's template when that template uses ``input``, with ``model`` set to the hosted id or
the path of the retained payload. The new output is compared with the recorded output text
(a unified diff when they differ), or with the recorded output digest when the text was
erased or never kept.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson
from jinja2 import Environment, TemplateSyntaxError, meta

from ..digest import of_text
from ..endpoints import DEFAULT_TIMEOUT, Call, RunnerError, parse_runner
from ..errors import ValidationError
from ..evals.harness.prompts import Prompt, load_prompt
from ..ids import decision_id as checked_decision_id
from ..ledger import artifacts as ledger_artifacts
from ..ledger import decisions as ledger_decisions
from ..ledger import subject_keys
from ..ledger.artifacts import Artifact
from ..ledger.decisions import Decision
from ..ledger.engine import Store
from ..timefmt import iso, now_us
from .loading import materialize
from .payloads import PayloadCheck, check_payload
from .verification import cache_for

VERDICTS = ("identical", "different", "not-retained", "not-comparable", "error")


@dataclass
class Missing:
    """Something the replay needs and cannot get: ``what`` (model, prompt, input text),
    ``status`` (missing, corrupt, not-stored, retired, unregistered, erased, not-kept,
    altered, unverifiable) and
    ``since`` (when it went: gc's deletion, the vendor's retirement, the erasure)."""

    what: str
    status: str
    message: str
    digest: str | None = None
    since: int | None = None

    def to_dict(self) -> dict:
        return {"what": self.what, "digest": self.digest, "status": self.status,
                "since": iso(self.since), "message": self.message}


@dataclass
class ReplayReport:
    decision: Decision
    verdict: str
    runner: str
    model: dict = field(default_factory=dict)
    prompt: dict | None = None
    missing: list[Missing] = field(default_factory=list)
    rendered: str | None = None
    system: str | None = None
    output: str | None = None
    output_digest: str | None = None
    recorded_output: str | None = None
    recorded_digest: str | None = None
    compared_by: str | None = None  # "text" or "digest"
    text_note: str | None = None  # why the recorded text is not there
    diff: str | None = None
    error: str | None = None

    @property
    def exit_code(self) -> int:
        return 0 if self.verdict == "identical" else 1

    def to_dict(self) -> dict:
        d = self.decision
        return {"decision": {"id": d.id, "at": iso(d.at), "alias": d.alias},
                "verdict": self.verdict, "runner": self.runner, "model": self.model,
                "prompt": self.prompt, "missing": [m.to_dict() for m in self.missing],
                "rendered": self.rendered, "system": self.system, "output": self.output,
                "output_digest": self.output_digest, "recorded_output": self.recorded_output,
                "recorded_digest": self.recorded_digest, "compared_by": self.compared_by,
                "text_note": self.text_note, "diff": self.diff, "error": self.error}


def _label(art: Artifact) -> str:
    name = f"{art.name}@{art.version}" if art.version else art.name
    return f"{art.kind} {name} ({art.digest})"


def _unretained(what: str, art: Artifact, check: PayloadCheck) -> Missing | None:
    """Why ``art``'s payload cannot serve the replay, or None when it can."""
    label = _label(art)
    if check.status == "vendor":
        if check.retired:
            return Missing(what, "retired", f"{label} is held by the vendor as "
                           f"{art.hosted_id}, retired at {iso(art.retires_at)}", art.digest,
                           art.retires_at)
        return None
    if check.status == "present":
        return None
    if check.status == "not-stored":
        return Missing(what, "not-stored", f"{label} was never stored: registered at "
                       f"{iso(art.created_at)} without a payload (--no-store)", art.digest)
    if art.payload_deleted_at is not None:
        return Missing(what, check.status, f"{label} is not retained: its payload was deleted "
                       f"by gc at {iso(art.payload_deleted_at)}", art.digest,
                       art.payload_deleted_at)
    if check.status == "corrupt":
        return Missing(what, "corrupt", f"{label} is not retained: its payload is corrupt "
                       f"({check.detail})", art.digest)
    detail = check.detail or "its payload is missing"
    return Missing(what, check.status, f"{label} is not retained: {detail} (no deletion by "
                   "gc was recorded)", art.digest)


def _input(row, d: Decision, key: bytes | None = None) -> tuple[str | None, Missing | None]:
    if row is None:
        return None, Missing("input text", "not-kept", "the input text was never kept: the "
                             "decision was recorded with digests only", d.input_digest)
    m = row._mapping
    if m["erased_at"] is not None:
        return None, Missing("input text", "erased", f"the input text was erased at "
                             f"{iso(m['erased_at'])} (subject {m['subject']})",
                             d.input_digest, m["erased_at"])
    if m["input_text"] is None:
        return None, Missing("input text", "not-kept", "the input text was never kept (only "
                             "the output was)", d.input_digest)
    matches = subject_keys.text_matches(m["input_text"], d.input_digest, key)
    if matches is None:
        return None, Missing("input text", "unverifiable", "the kept input text cannot be "
                             "checked against the chained input_digest: it is keyed and the "
                             f"key of subject {d.subject!r} is gone, so it is not replayed",
                             d.input_digest)
    if not matches:
        return None, Missing("input text", "altered", "the kept input text does not hash to "
                             f"the chained input_digest {d.input_digest}: it was changed "
                             "after it was recorded, and is not replayed", d.input_digest)
    return m["input_text"], None


@contextlib.contextmanager
def payload_path(store: Store, art: Artifact) -> Iterator[str]:
    """The path a runner loads the retained payload from: the verified blob for a file;
    for a directory, the verified tree of its files (registry/loading.py: hard links to the
    blobs, cached by digest). Nothing large is copied; runners must only read it."""
    yield str(materialize(store, art))


def uses_input(template: str) -> bool:
    try:
        return "input" in meta.find_undeclared_variables(Environment().parse(template))
    except TemplateSyntaxError:
        return True  # rendering will report the error


def render(prompt: Prompt | None, text: str) -> tuple[str, str | None]:
    """(what the runner is sent, the system text) for the stored input ``text``.

    A template that uses ``input`` is rendered with it (and, when the input is a JSON
    object, with its fields at top level); a prompt whose template does not is sent as the
    system text, unless it has its own."""
    if prompt is None:
        return text, None
    if not uses_input(prompt.template):
        return text, prompt.system if prompt.system is not None else prompt.template
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        parsed = None
    variables = dict(parsed) if isinstance(parsed, dict) else {}
    variables["input"] = text
    return prompt.renderer()(variables), prompt.system


def replay(store: Store, decision_id: str, runner: str, *, timeout: float = DEFAULT_TIMEOUT,
           use_cache: bool = True, now: int | None = None) -> ReplayReport:
    """Re-run one decision (see the module docstring); never writes to the ledger."""
    decision_id = checked_decision_id(decision_id, "DECISION_ID")
    run = parse_runner(runner, timeout=timeout)  # a bad runner fails before any work
    now = now_us() if now is None else now
    with store.read() as conn:
        d = ledger_decisions.get(conn, decision_id)
        row = ledger_decisions.payload(conn, decision_id)
        key = (subject_keys.key_for(conn, d.subject) if subject_keys.is_keyed(d.input_digest)
               or subject_keys.is_keyed(d.output_digest) else None)
        arts = ledger_artifacts.find_many(conn, [d.model_digest, d.prompt_digest])
    if d.model_digest is None:
        raise ValidationError(f"decision {d.id} records no model digest: there is nothing to "
                              "re-run it with", field="DECISION_ID",
                              hint="MW101 reports decisions that name no registered artifact")
    report = ReplayReport(d, "not-retained", run.spec, recorded_digest=d.output_digest)
    cache = cache_for(store, now, enabled=use_cache)
    needed = [("model", d.model_digest)] + ([("prompt", d.prompt_digest)]
                                            if d.prompt_digest else [])
    for what, digest in needed:
        art = arts.get(digest)
        if art is None:
            report.missing.append(Missing(what, "unregistered", f"{what} {digest} was never "
                                          "registered: there is no payload to replay with",
                                          digest))
            continue
        check = check_payload(store, art, verify=True, cache=cache, now=now)
        info = {"digest": digest, "label": _label(art), "payload": check.describe(),
                "status": check.status}
        setattr(report, what, info)
        lost = _unretained(what, art, check)
        if lost is not None:
            report.missing.append(lost)
    text, lost = _input(row, d, key)
    if lost is not None:
        report.missing.append(lost)
    if report.missing:
        return report
    prompt = None
    try:
        if d.prompt_digest:
            prompt = load_prompt(store, d.prompt_digest)  # re-verified as it is read
            report.prompt["uses_input"] = uses_input(prompt.template)
        report.rendered, report.system = render(prompt, text)
    except ValidationError as exc:
        report.verdict, report.error = "error", exc.message
        return report
    model = arts[d.model_digest]
    item = {"id": d.id, "decision_id": d.id, "input": text, "at": iso(d.at), "alias": d.alias}
    where = (payload_path(store, model) if model.payload == "blob"
             else contextlib.nullcontext(model.hosted_id))
    with where as model_arg:
        report.model["passed_as"] = model_arg
        call = run.bind(model, model_id=model_arg)
        try:
            report.output = call(Call(report.rendered, report.system, item))
        except RunnerError as exc:
            report.verdict, report.error = "error", str(exc)
            return report
    _compare(report, row, key)
    return report


def _compare(report: ReplayReport, row, key: bytes | None = None) -> None:
    new = report.output or ""
    report.output_digest = of_text(new)
    if key is not None and subject_keys.is_keyed(report.recorded_digest):
        # in the recorded digest's own form (keyed with the subject's key), so the two compare
        report.output_digest = subject_keys.keyed(key, report.output_digest)
    recorded = row._mapping["output_text"] if row is not None else None
    if row is not None and row._mapping["erased_at"] is not None:
        report.text_note = f"the output text was erased at {iso(row._mapping['erased_at'])}"
    elif recorded is None:
        report.text_note = "the output text was never kept"
    if recorded is not None:
        report.recorded_output, report.compared_by = recorded, "text"
        same = of_text(recorded) == of_text(new)
    elif report.recorded_digest is not None:
        report.compared_by = "digest"
        same = report.recorded_digest == report.output_digest
        if subject_keys.is_keyed(report.recorded_digest) and key is None:
            # keyed with a subject key that is gone (erased): nothing can be compared
            report.verdict = "not-comparable"
            report.text_note = ((report.text_note or "the output text was never kept")
                                + "; the recorded output digest is keyed and the subject's "
                                "key is gone")
            return
    else:
        report.verdict = "not-comparable"
        return
    report.verdict = "identical" if same else "different"
    if not same and recorded is not None:
        report.diff = "".join(difflib.unified_diff(_lines(recorded), _lines(new),
                                                   fromfile="recorded", tofile="replay"))


def _lines(text: str) -> list[str]:
    """Lines for a unified diff; a missing final newline is marked as diff(1) does."""
    lines = text.replace("\r\n", "\n").splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n\\ No newline at end of file\n"
    return lines
