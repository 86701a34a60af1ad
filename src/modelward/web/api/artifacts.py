"""/api/v1/artifacts: register (a file upload, or a hosted model id), list, get."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile

from ...errors import ValidationError
from ...ledger import artifacts as ledger_artifacts
from ...timefmt import parse_time
from ..auth import READ, WRITE, require
from ..limits import body_limit
from ._common import check_no_nul, store_of, token_of

router = APIRouter(tags=["artifacts"])


def _upload_name(filename: str | None) -> str:
    """The uploaded file's base name (its suffix decides how configs are digested); never a
    path the client chose."""
    name = Path((filename or "").replace("\x00", "").replace("\\", "/")).name
    return name if name not in ("", ".", "..") else "payload"


@router.post("/artifacts", dependencies=[Depends(require(*WRITE))])
@body_limit("max_upload")
def register_artifact(
    request: Request,
    kind: str = Form(..., description="model, adapter, prompt, embedder, reranker, dataset, "
                     "evalset, config or policy."),
    name: str = Form(..., description="Human name, e.g. support-chat."),
    version: str | None = Form(None, description="Version label (metadata only)."),
    owner: str | None = Form(None, description="Owner's e-mail."),
    parent: list[str] | None = Form(None, description="Digest of a parent (repeatable)."),
    store_payload: bool = Form(True, alias="store", description="Keep the payload in the "
                               "blob store (false: record the digest only)."),
    hosted: str | None = Form(None, description="VENDOR:MODEL_ID of a vendor-held model "
                              "(instead of a file)."),
    retires: str | None = Form(None, description="Vendor retirement time (ISO 8601) of a "
                               "hosted model."),
    file: UploadFile | None = File(None, description="The file to register."),
) -> dict:
    """Register an artifact by content (idempotent): upload ``file``, or name ``hosted``."""
    store = store_of(request)
    check_no_nul(kind=kind, name=name, version=version, owner=owner, parent=parent,
                 hosted=hosted, retires=retires)
    parents = parent or ()
    if hosted is not None:
        if file is not None:
            raise ValidationError("give either file or hosted, not both", field="file")
        reg = ledger_artifacts.register_hosted(
            store, hosted, name=name, kind=kind, version=version, owner=owner,
            parents=parents, retires_at=(parse_time(retires, field="retires") if retires is not None
                                   else None),
            token_id=token_of(request).id)
    else:
        if file is None:
            raise ValidationError("upload the file to register, or name a hosted model",
                                  field="file", hint="multipart field 'file', or 'hosted'")
        if retires is not None:
            raise ValidationError("retires applies to hosted models only", field="retires")
        ledger_artifacts.check_kind(kind)  # before spooling a large upload to disk
        with tempfile.TemporaryDirectory(prefix="modelward-upload-") as tmp:
            path = Path(tmp) / _upload_name(file.filename)
            with path.open("wb") as fh:
                shutil.copyfileobj(file.file, fh, 1 << 20)
            reg = ledger_artifacts.register_path(
                store, kind, path, name=name, version=version, owner=owner, parents=parents,
                store_payload=store_payload, meta={"uploaded_as": path.name},
                token_id=token_of(request).id)
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
