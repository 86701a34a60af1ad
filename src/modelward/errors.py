"""The one exception tree of modelward.

Every error modelward raises on purpose derives from :class:`ModelwardError`; surfaces
(CLI, API) turn it into one red line with a hint (exit 2) or one JSON error envelope.

::

    ModelwardError
    ├── ConfigError              a setting, modelward.toml key or CLI option is wrong
    ├── ValidationError          input (a decision, a digest, a timestamp) is malformed
    │                            (.field names what was wrong, .line the input line)
    ├── ForbiddenError           this identity may not do this (acting as someone else, moving
    │                            a protected alias by hand, break-glass without being admin)
    ├── NotFoundError            a thing that must exist does not
    │   ├── UnknownArtifactError    no artifact with that digest is registered
    │   ├── UnknownAliasError       no such alias, or it did not exist at that time
    │   └── UnknownDecisionError    no decision with that id
    ├── IntegrityError           stored content fails verification
    │   ├── BlobCorruptError        a blob's bytes no longer match its digest
    │   └── IdConflictError         an id already recorded arrives with other content
    │                               (.ids names them)
    └── StorageError             the database or blob store failed underneath us
        ├── SchemaError             the database is not initialised or not migrated
        └── ConflictError           a concurrent writer won; retry
"""

from __future__ import annotations


class ModelwardError(Exception):
    """Root of every error modelward raises on purpose."""

    code = "modelward_error"
    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint

    def to_dict(self) -> dict:
        out = {"code": self.code, "message": self.message}
        if self.hint:
            out["hint"] = self.hint
        return out


class ConfigError(ModelwardError):
    code = "config_error"


class ValidationError(ModelwardError):
    code = "validation_error"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        prefix = ""
        if line is not None:
            prefix += f"line {line}: "
        if field is not None:
            prefix += f"{field}: "
        super().__init__(prefix + message, hint=hint)
        self.detail = message
        self.field = field
        self.line = line
        self.problems: list[ValidationError] = []

    def to_dict(self) -> dict:
        out = super().to_dict()
        if self.field:
            out["field"] = self.field
        if self.line is not None:
            out["line"] = self.line
        if self.problems:
            out["problems"] = [p.to_dict() for p in self.problems]
        return out


class ForbiddenError(ModelwardError):
    code = "forbidden"


class NotFoundError(ModelwardError):
    code = "not_found"


class UnknownArtifactError(NotFoundError):
    code = "unknown_artifact"


class UnknownAliasError(NotFoundError):
    code = "unknown_alias"


class UnknownDecisionError(NotFoundError):
    code = "unknown_decision"


class IntegrityError(ModelwardError):
    code = "integrity_error"


class BlobCorruptError(IntegrityError):
    code = "blob_corrupt"


class IdConflictError(IntegrityError):
    """Ids already recorded, sent again with different content (``.ids``, and
    ``.fields``: id -> the fields that differ). Nothing of the batch was written."""

    code = "id_conflict"

    def __init__(self, message: str, *, ids: list[str], fields: dict[str, list[str]],
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.ids = ids
        self.fields = fields

    def to_dict(self) -> dict:
        return {**super().to_dict(), "ids": self.ids, "fields": self.fields}


class StorageError(ModelwardError):
    code = "storage_error"


class SchemaError(StorageError):
    code = "schema_error"


class ConflictError(StorageError):
    code = "conflict"
