"""MLflow watch: keep the ledger in step with MLflow as versions and aliases change.

:func:`watch` records each alias move as an alias event — the history MLflow does not
keep — and each deleted MLflow alias as an alias deletion:

* with webhooks (an MLflow tracking server that supports them, MLflow 3.3+): it listens
  on ``listen`` (HOST:PORT), registers a webhook for ``model_version.created`` and
  ``model_version_alias.created|deleted`` (signed with a secret, HMAC-SHA256, checked on
  every delivery) and records each event when it arrives, at the time MLflow sent it — no
  flip between two polls is missed; a reconciling poll every ``interval`` catches a lost
  delivery; the webhook is removed when the watch stops;
* otherwise (a file or database store, an older server, no ``listen``): it polls every
  ``interval``; moves and flips back between two polls are not seen.

MLflow records who created a version (or its run) but not who set or deleted an alias:
alias events name the actor ``mlflow``, with the version's creator in the evidence when
known. Versions are registered by :mod:`modelward.integrations.mlflow`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import queue
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson

from ..errors import ValidationError
from ..ledger import aliases as ledger_aliases
from ..ledger.engine import Store
from .mlflow import (
    ACTOR,
    Change,
    ImportReport,
    _client,
    _register_version,
    alias_name,
    import_mlflow,
    redact,
)

WEBHOOK_EVENTS = ("model_version.created", "model_version_alias.created",
                  "model_version_alias.deleted")
MAX_SKEW_S = 300  # a delivery whose timestamp is further off is refused (replay protection)


def _version_digest(store, client, tracking_uri, registry, known, name, version, report):
    digest = known.get((name, str(version)))
    if digest is None:
        mv = client.get_model_version(name, str(version))
        digest = known[(name, str(version))] = _register_version(
            store, client, tracking_uri, registry, name, mv, report)
    return digest


def apply_event(store, tracking_uri: str, registry_uri: str | None, event: dict,
                known: dict, *, client=None) -> ImportReport:
    """Record one MLflow webhook delivery (``{"entity", "action", "timestamp", "data"}``)
    at the time MLflow sent it; returns what it changed."""
    from ..timefmt import parse_time

    registry = redact(registry_uri or tracking_uri)
    report = ImportReport(registry)
    client = client or _client(tracking_uri, registry_uri)
    kind = f"{event.get('entity')}.{event.get('action')}"
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    name, version = str(data.get("name") or ""), data.get("version")
    try:
        at = parse_time(event.get("timestamp"), field="timestamp")
    except (ValidationError, TypeError):
        at = None
    if not name or kind not in WEBHOOK_EVENTS:
        return report
    if kind == "model_version.created":
        if (name, str(version)) not in known:
            _version_digest(store, client, tracking_uri, registry, known, name, version,
                            report)
        return report
    alias = alias_name(name, str(data.get("alias") or ""))
    try:
        ledger_aliases.check_alias(alias)
    except ValidationError:
        report.changes.append(Change("skipped", name, alias=alias,
                                     message="not a valid modelward alias name"))
        return report
    if kind == "model_version_alias.deleted":
        with store.write() as conn:
            ev, deleted = ledger_aliases.delete_alias(
                conn, alias, actor=ACTOR, at=at, reason="alias deleted in MLflow",
                evidence={"mlflow_model": name, "registry_uri": registry,
                          "source": "webhook"})
        if deleted:
            report.changes.append(Change("alias-deleted", name, alias=alias,
                                         previous_digest=ev.digest, kind="delete"))
        return report
    digest = _version_digest(store, client, tracking_uri, registry, known, name, version,
                             report)
    evidence = {"mlflow_model": name, "mlflow_version": str(version),
                "registry_uri": registry, "source": "webhook"}
    with store.write() as conn:
        try:
            ev, moved = ledger_aliases.set_alias(conn, alias, digest, actor=ACTOR, at=at,
                                                 reason="alias set in MLflow (webhook)",
                                                 evidence=evidence)
        except ValidationError:  # a reconciling poll recorded it later than MLflow sent it
            ev, moved = ledger_aliases.set_alias(conn, alias, digest, actor=ACTOR,
                                                 reason="alias set in MLflow (webhook)",
                                                 evidence=evidence)
    if moved:
        report.changes.append(Change("alias", name, str(version), digest, alias=alias,
                                     previous_digest=ev.previous_digest, kind=ev.kind))
    return report


def signature(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """MLflow's webhook signature: ``v1,`` + base64 HMAC-SHA256 of
    ``{delivery id}.{timestamp}.{body}``."""
    mac = hmac.new(secret.encode(), f"{delivery_id}.{timestamp}.".encode() + body,
                   hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


class WebhookListener:
    """An HTTP endpoint for MLflow's webhook deliveries (``POST /mlflow``): checks each
    delivery's signature and time, and queues its event for the watch loop."""

    def __init__(self, listen: str, secret: str) -> None:
        host, _, port = listen.rpartition(":")
        if not host or not port.isdigit():
            raise ValidationError(f"--listen wants HOST:PORT, got {listen!r}", field="--listen")
        self.secret = secret
        self.events: queue.Queue = queue.Queue()
        self.refused = 0
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # the watch prints what matters
                pass

            def do_POST(self):  # noqa: N802 - http.server's name
                length = self.headers.get("content-length", "")
                if self.path.rstrip("/") != "/mlflow" or not length.isdigit() or \
                        int(length) > 1 << 20:
                    return self._answer(404 if self.path.rstrip("/") != "/mlflow" else 413)
                body = self.rfile.read(int(length))
                if not listener.verify(self.headers, body):
                    listener.refused += 1
                    return self._answer(401)
                try:
                    event = orjson.loads(body)
                except orjson.JSONDecodeError:
                    return self._answer(400)
                if not isinstance(event, dict):
                    return self._answer(400)
                listener.events.put(event)
                return self._answer(200)

            def _answer(self, code: int) -> None:
                self.send_response(code)
                self.send_header("content-length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer((host, int(port)), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True,
                                       name="modelward-mlflow-webhooks")

    @property
    def address(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"{host}:{port}"

    def verify(self, headers, body: bytes) -> bool:
        delivery = headers.get("X-MLflow-Delivery-Id") or ""
        stamp = headers.get("X-MLflow-Timestamp") or ""
        given = headers.get("X-MLflow-Signature") or ""
        if not stamp.isdigit() or abs(time.time() - int(stamp)) > MAX_SKEW_S:
            return False
        return hmac.compare_digest(given, signature(self.secret, delivery, stamp, body))

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _register_webhook(client, url: str, secret: str):
    """The webhook MLflow will call, or (None, reason) when the server cannot."""
    from mlflow.exceptions import MlflowException

    try:
        hook = client.create_webhook(f"modelward-watch-{uuid.uuid4().hex[:8]}", url,
                                     events=list(WEBHOOK_EVENTS), secret=secret,
                                     description="modelward watch mlflow")
    except (MlflowException, NotImplementedError, AttributeError) as exc:
        text = str(getattr(exc, "message", exc)).splitlines()[0][:200]
        return None, text or exc.__class__.__name__
    return hook, None


def watch(store: Store, tracking_uri: str, registry_uri: str | None = None, *,
          interval: float = 30.0, max_polls: int | None = None,
          on_poll: Callable[[int, ImportReport | None, Exception | None], None] | None = None,
          sleep: Callable[[float], None] = time.sleep, listen: str | None = None,
          public_url: str | None = None, secret: str | None = None,
          on_event: Callable[[dict, ImportReport | None, Exception | None], None] | None = None,
          on_mode: Callable[[str, str | None], None] | None = None,
          stop: threading.Event | None = None) -> int:
    """Keep the ledger in step with MLflow (see the module docstring); returns the number
    of polls. A poll runs every ``interval`` seconds (``max_polls`` times, or until ``stop``
    is set); the first poll's error is raised, a later one is reported to ``on_poll`` and
    the watch goes on. With ``listen`` (HOST:PORT) webhook deliveries are recorded as they
    arrive (``on_event``); ``public_url`` is the URL MLflow can reach the listener at
    (default ``http://HOST:PORT/mlflow``). ``on_mode("webhooks"|"polling", reason)`` says
    which the watch uses."""
    known: dict = {}
    current: dict[str, str] = {}
    polls = 0
    listener = hook = None
    client = None
    if listen:
        secret = secret or secrets.token_urlsafe(24)
        listener = WebhookListener(listen, secret)
        listener.start()
        client = _client(tracking_uri, registry_uri)
        url = public_url or f"http://{listener.address}/mlflow"
        hook, why = _register_webhook(client, url, secret)
        if hook is None:
            listener.stop()
            listener = None
            if on_mode is not None:
                on_mode("polling", f"the MLflow server does not take webhooks ({why})")
        elif on_mode is not None:
            on_mode("webhooks", url)
    elif on_mode is not None:
        on_mode("polling", None)
    stop = stop or threading.Event()
    try:
        while (max_polls is None or polls < max_polls) and not stop.is_set():
            polls += 1
            try:
                report = import_mlflow(store, tracking_uri, registry_uri, known=known,
                                       reason="alias moved in MLflow (seen by modelward watch)")
                for alias in sorted(current.keys() - report.present.keys()):
                    report.changes.extend(_deleted(store, alias, current[alias],
                                                   report.registry_uri))
                current.clear()
                current.update(report.present)
                error = None
            except Exception as exc:  # the registry may come back: keep watching
                if polls == 1:
                    raise  # never reached it: a wrong URI should fail at once, not loop
                report, error = None, exc
            if on_poll is not None:
                on_poll(polls, report, error)
            if max_polls is not None and polls >= max_polls:
                break
            _wait(interval, sleep, stop, listener, lambda ev, cur=current: _on_delivery(
                store, tracking_uri, registry_uri, ev, known, cur, client, on_event))
    finally:
        if listener is not None:
            listener.stop()
        if hook is not None:
            try:
                client.delete_webhook(hook.webhook_id)
            except Exception:  # the server went away: its webhook goes with it
                pass
    return polls


def _deleted(store, alias: str, model: str, registry: str) -> list[Change]:
    with store.write() as conn:
        ev, deleted = ledger_aliases.delete_alias(
            conn, alias, actor=ACTOR, reason="alias deleted in MLflow (seen by modelward watch)",
            evidence={"mlflow_model": model, "registry_uri": registry})
    if not deleted:
        return []
    return [Change("alias-deleted", model, alias=alias, previous_digest=ev.digest,
                   kind="delete")]


def _on_delivery(store, tracking_uri, registry_uri, event, known, current, client, on_event):
    try:
        report = apply_event(store, tracking_uri, registry_uri, event, known, client=client)
        data = event.get("data") or {}
        alias = alias_name(str(data.get("name")), str(data.get("alias")))
        for change in report.changes:  # keep the poll's view of what exists in step
            if change.action == "alias":
                current[alias] = change.model
            elif change.action == "alias-deleted":
                current.pop(alias, None)
        error = None
    except Exception as exc:  # one bad delivery must not stop the watch
        report, error = None, exc
    if on_event is not None:
        on_event(event, report, error)


def _wait(interval: float, sleep, stop: threading.Event, listener, handle) -> None:
    """Sleep ``interval`` seconds, handling webhook deliveries as they arrive."""
    if listener is None:
        if sleep is time.sleep:
            stop.wait(interval)
        else:
            sleep(interval)
        return
    deadline = time.monotonic() + interval
    while not stop.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        try:
            event = listener.events.get(timeout=min(left, 0.5))
        except queue.Empty:
            continue
        handle(event)
