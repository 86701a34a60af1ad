"""Copy a blob store to another (``modelward blobs migrate --to URL``), verifying every
digest.

Every blob of the source is streamed to the target (multipart for large ones), hashed on
the way; a blob already in the target is kept when it verifies, replaced when it does not.
After the copy each blob is read back from the target and rehashed. A source blob whose
bytes no longer match its digest is reported and never copied. The source is left as it
was; point ``blob_url`` at the target once the report is clean.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import BlobCorruptError, NotFoundError


@dataclass
class MigrationReport:
    source: str
    target: str
    blobs: int = 0
    copied: int = 0
    already: int = 0  # present in the target and verified there
    bytes_copied: int = 0
    verified: int = 0  # read back from the target and matched
    corrupt_source: list[str] = field(default_factory=list)
    missing_source: list[str] = field(default_factory=list)
    failed_target: list[str] = field(default_factory=list)  # did not verify after the copy

    @property
    def ok(self) -> bool:
        return not (self.corrupt_source or self.missing_source or self.failed_target)

    def to_dict(self) -> dict:
        return {"source": self.source, "target": self.target, "blobs": self.blobs,
                "copied": self.copied, "already_present": self.already,
                "bytes_copied": self.bytes_copied, "verified": self.verified,
                "corrupt_in_source": self.corrupt_source,
                "missing_in_source": self.missing_source,
                "failed_in_target": self.failed_target, "ok": self.ok}


def migrate(source, target, *, on_blob: Callable[[int, int], None] | None = None
            ) -> MigrationReport:
    """Copy every blob of ``source`` into ``target`` (blob stores) and verify each there."""
    report = MigrationReport(source.url, target.url)
    digests = list(source.digests())
    report.blobs = len(digests)
    for done, digest in enumerate(digests, start=1):
        if target.has(digest) and target.verify(digest) == "present":
            report.already += 1
        else:
            size = source.size(digest)
            try:
                target.put_stream(source.verified_chunks(digest), expected=digest,
                                  what=f"blob {digest} of {source.url}", size=size)
                report.copied += 1
                report.bytes_copied += size or 0
            except BlobCorruptError:
                report.corrupt_source.append(digest)
                if on_blob is not None:
                    on_blob(done, len(digests))
                continue
            except NotFoundError:  # collected while we ran
                report.missing_source.append(digest)
                continue
        if target.verify(digest) == "present":
            report.verified += 1
        else:
            report.failed_target.append(digest)
        if on_blob is not None:
            on_blob(done, len(digests))
    return report


__all__ = ["MigrationReport", "migrate"]
