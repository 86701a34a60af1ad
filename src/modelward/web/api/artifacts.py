"""/api/v1/artifacts: register (a file upload, or a hosted model id), list, get.

An upload streams: the multipart body is parsed piece by piece as it arrives (after the
limits middleware has authenticated the request and while it counts the body against
``max_upload``), and the file's bytes go straight into the blob store's staging area,
hashed on the way; no temporary file is written and the body is never held whole."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl

import anyio
from fastapi import APIRouter, Depends, Query, Request
from python_multipart.multipart import MultipartParser, parse_options_header

from ...errors import ValidationError
from ...ledger import artifacts as ledger_artifacts
from ...timefmt import parse_time
from ..auth import READ, WRITE, require
from ..limits import TooLarge, body_limit
from ._common import check_no_nul, store_of, token_of

router = APIRouter(tags=["artifacts"])


def _upload_name(filename: str | None) -> str:
    """The uploaded file's base name (its suffix decides how configs are digested); never a
    path the client chose."""
    name = Path((filename or "").replace("\x00", "").replace("\\", "/")).name
    return name if name not in ("", ".", "..") else "payload"


FIELDS = ("kind", "name", "version", "owner", "parent", "store", "hosted", "retires")
FIELD_MAX = 64 * 1024  # bytes of one form field (the file aside)
FORM_MAX = 1 << 20  # bytes of a form without a file
TRUE, FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}

FORM_SCHEMA = {
    "type": "object",
    "required": ["kind", "name"],
    "properties": {
        "kind": {"type": "string", "description": "model, adapter, prompt, embedder, "
                 "reranker, dataset, evalset, config or policy."},
        "name": {"type": "string", "description": "Human name, e.g. support-chat."},
        "version": {"type": "string", "description": "Version label (metadata only)."},
        "owner": {"type": "string", "description": "Owner's e-mail."},
        "parent": {"type": "array", "items": {"type": "string"},
                   "description": "Digest of a parent (repeatable)."},
        "store": {"type": "boolean", "default": True, "description": "Keep the payload in "
                  "the blob store (false: record the digest only)."},
        "hosted": {"type": "string", "description": "VENDOR:MODEL_ID of a vendor-held "
                   "model (instead of a file)."},
        "retires": {"type": "string", "description": "Vendor retirement time (ISO 8601) of "
                    "a hosted model."},
        "file": {"type": "string", "format": "binary", "description": "The file to "
                 "register; send it after the other fields (kind first)."},
    },
}


class StreamedForm:
    """A ``multipart/form-data`` body read from a worker thread, one received piece at a
    time: fields are gathered (each at most ``FIELD_MAX`` bytes), the ``file`` part is
    handed on as an iterator of its bytes (:meth:`file_chunks`) while it arrives."""

    def __init__(self, boundary: bytes, next_piece) -> None:
        self.next_piece, self.error = next_piece, None
        self.fields: dict[str, list[str]] = {}
        self.filename: str | None = None
        self.file_seen = self.in_file = self.ended = False
        self._name = self._header_field = b""
        self._headers: dict[bytes, bytes] = {}
        self._value = bytearray()
        self._file_data: list[bytes] = []
        self._header_value = b""
        self.parser = MultipartParser(boundary, {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field_data,
            "on_header_value": self._header_value_data,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        })

    # --- parser callbacks ---------------------------------------------------------------
    def _part_begin(self) -> None:
        self._headers, self._header_field, self._header_value = {}, b"", b""
        self._value = bytearray()

    def _header_field_data(self, data, start, end) -> None:
        self._header_field += data[start:end]

    def _header_value_data(self, data, start, end) -> None:
        self._header_value += data[start:end]
        if len(self._header_value) > FIELD_MAX:
            raise ValidationError("a multipart part header is too long", field="file")

    def _header_end(self) -> None:
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field, self._header_value = b"", b""

    def _headers_finished(self) -> None:
        _disp, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        self._name = name
        if name == "file":
            if self.file_seen:
                raise ValidationError("send one file", field="file")
            self.file_seen = self.in_file = True
            raw = options.get(b"filename")
            self.filename = raw.decode("utf-8", "replace") if raw is not None else None

    def _part_data(self, data, start, end) -> None:
        if self.in_file:
            self._file_data.append(bytes(data[start:end]))
            return
        self._value += data[start:end]
        if len(self._value) > FIELD_MAX:
            raise ValidationError(f"the form field is longer than {FIELD_MAX} bytes",
                                  field=self._name or None)

    def _part_end(self) -> None:
        if self.in_file:
            self.in_file = False
        elif self._name in FIELDS:
            try:
                value = self._value.decode("utf-8")
            except UnicodeDecodeError:
                raise ValidationError("is not UTF-8 text", field=self._name) from None
            self.fields.setdefault(self._name, []).append(value)

    def _end(self) -> None:
        self.ended = True

    # --- reading ------------------------------------------------------------------------
    def _feed(self) -> None:
        try:
            piece = self.next_piece()
        except BaseException as exc:  # the client went away, or the body passed its limit
            self.error = exc
            raise
        if piece is None:
            raise ValidationError("the multipart body ends before its closing boundary",
                                  field="file")
        self.parser.write(piece)

    def read_to_file(self) -> bool:
        """Read up to the first bytes of the ``file`` part (True) or the end (False)."""
        while not self.file_seen and not self.ended:
            self._feed()
        return self.file_seen

    def file_chunks(self):
        """The ``file`` part's bytes as they arrive."""
        while True:
            while self._file_data:
                yield self._file_data.pop(0)
            if not self.in_file:
                return
            self._feed()

    def read_to_end(self) -> None:
        while not self.ended:
            self._feed()

    def one(self, name: str) -> str | None:
        values = self.fields.get(name)
        if not values:
            return None
        if len(values) > 1:
            raise ValidationError("give this field once", field=name)
        return values[0]


def _flag(value: str | None, field: str) -> bool:
    if value is None:
        return True
    if value.lower() in TRUE:
        return True
    if value.lower() in FALSE:
        return False
    raise ValidationError(f"{value!r} is not true or false", field=field)


def _body_reader(request: Request):
    """``next_piece()`` for a worker thread: the next received piece of the body (None at
    its end), read on the event loop through the limits middleware's counting receive."""
    stream = request.stream()

    async def pull() -> bytes | None:
        while True:
            try:
                piece = await stream.__anext__()
            except StopAsyncIteration:
                return None
            if piece:
                return piece

    return lambda: anyio.from_thread.run(pull)


def _register(request: Request, fields: dict[str, list[str]], form: StreamedForm | None):
    """Validate the fields and register: the hosted id, or the file ``form`` streams."""
    store = store_of(request)

    def one(name: str) -> str | None:
        if form is not None:
            return form.one(name)
        values = fields.get(name)
        if values and len(values) > 1:
            raise ValidationError("give this field once", field=name)
        return values[0] if values else None

    kind, name = one("kind"), one("name")
    version, owner, hosted, retires = one("version"), one("owner"), one("hosted"), one("retires")
    parents = fields.get("parent") or []
    check_no_nul(kind=kind, name=name, version=version, owner=owner, parent=parents,
                 hosted=hosted, retires=retires)
    if kind is None:
        raise ValidationError("kind is required" + (" before the file" if form and form.file_seen
                                                       else ""),
                              field="kind", hint="send the form fields before the file")
    ledger_artifacts.check_kind(kind)  # before a byte of a large upload is stored
    store_payload = _flag(one("store"), "store")
    if form is None or not form.file_seen:
        if name is None:
            raise ValidationError("name is required", field="name")
        if hosted is None:
            raise ValidationError("upload the file to register, or name a hosted model",
                                  field="file", hint="multipart field 'file', or 'hosted'")
        return ledger_artifacts.register_hosted(
            store, hosted, name=name, kind=kind, version=version, owner=owner,
            parents=parents, retires_at=(parse_time(retires, field="retires")
                                         if retires is not None else None),
            token_id=token_of(request).id)
    if hosted is not None:
        raise ValidationError("give either file or hosted, not both", field="file")
    if retires is not None:
        raise ValidationError("retires applies to hosted models only", field="retires")
    filename = _upload_name(form.filename)
    with ledger_artifacts.stage_upload(store, kind, form.file_chunks(), filename=filename,
                                       store_payload=store_payload) as upload:
        form.read_to_end()  # fields after the file (name, parents …) and the closing boundary
        name, version, owner = one("name"), one("version"), one("owner")
        parents = fields.get("parent") or []
        check_no_nul(name=name, version=version, owner=owner, parent=parents)
        if one("hosted") is not None:
            raise ValidationError("give either file or hosted, not both", field="file")
        if one("retires") is not None:
            raise ValidationError("retires applies to hosted models only", field="retires")
        if name is None:
            raise ValidationError("name is required", field="name")
        return ledger_artifacts.record_upload(
            store, upload, name=name, version=version, owner=owner, parents=parents,
            meta={"uploaded_as": filename}, token_id=token_of(request).id)


@router.post("/artifacts", dependencies=[Depends(require(*WRITE))], openapi_extra={
    "requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": FORM_SCHEMA},
        "application/x-www-form-urlencoded": {"schema": {
            **FORM_SCHEMA, "properties": {k: v for k, v in FORM_SCHEMA["properties"].items()
                                          if k != "file"}}}}}})
@body_limit("max_upload")
async def register_artifact(request: Request) -> dict:
    """Register an artifact by content (idempotent): upload ``file`` (multipart, streamed
    into the blob store), or name ``hosted``."""
    media, options = parse_options_header(request.headers.get("content-type", ""))
    next_piece = _body_reader(request)
    if media == b"multipart/form-data":
        boundary = options.get(b"boundary")
        if not boundary:
            raise ValidationError("the multipart Content-Type names no boundary", field="file")
        form = StreamedForm(boundary, next_piece)

        def work():
            try:
                form.read_to_file()
                return _register(request, form.fields, form)
            except Exception:
                if form.error is not None:  # the body's own failure, whatever wrapped it
                    raise form.error from None
                raise
        reg = await anyio.to_thread.run_sync(work)
    elif media in (b"application/x-www-form-urlencoded", b""):
        raw = bytearray()
        async for piece in request.stream():
            raw += piece
            if len(raw) > FORM_MAX:
                raise TooLarge(f"a form without a file takes at most {FORM_MAX} bytes; "
                               "upload files as multipart/form-data")
        fields: dict[str, list[str]] = {}
        try:
            pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            raise ValidationError("the form is not UTF-8", field=None) from None
        for key, value in pairs:
            if key in FIELDS:
                fields.setdefault(key, []).append(value)
        reg = await anyio.to_thread.run_sync(_register, request, fields, None)
    else:
        raise ValidationError(f"Content-Type {media.decode('latin-1')!r} is not a form",
                              field="file", hint="send multipart/form-data (with the file) "
                              "or application/x-www-form-urlencoded (hosted models)")
    return {"digest": reg.artifact.digest, "created": reg.created,
            "restored_payload": reg.restored_payload, "artifact": reg.artifact.to_dict()}


@router.get("/artifacts", dependencies=[Depends(require(*READ))])
def list_artifacts(request: Request, kind: str | None = None) -> list[dict]:
    """Registered artifacts, oldest first (optionally of one kind)."""
    with store_of(request).read() as conn:
        return [a.to_dict() for a in ledger_artifacts.list_artifacts(conn, kind)]


@router.get("/artifacts/{digest}", dependencies=[Depends(require(*READ))])
def get_artifact(
    digest: str, request: Request,
    verify: bool = Query(False, description="Also rehash the stored payload and report "
                         "payload_status (present, missing, corrupt, vendor, not-stored)."),
) -> dict:
    """One artifact: metadata, lineage, payload location."""
    store = store_of(request)
    with store.read() as conn:
        art = ledger_artifacts.get(conn, digest)
    out = art.to_dict()
    if verify:
        out["payload_status"] = ledger_artifacts.payload_status(store, art)
    return out
