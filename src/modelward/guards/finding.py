"""What a guard reports: :class:`Finding`, with a fingerprint stable across runs."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from ..digest import canonical_json
from .registry import BY_CODE, RANK


@dataclass(frozen=True)
class Finding:
    """One problem a guard found.

    ``identity`` names the evidence keys that say *which* problem this is (a digest, a
    process), as opposed to how big it is today (counts, first/last seen). The
    fingerprint hashes code, subject and those values only, so a suppression keeps
    matching while the count grows."""

    code: str
    severity: str
    subject: str
    message: str
    evidence: dict = field(default_factory=dict)
    fix: str | None = None
    identity: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.severity not in RANK:
            raise ValueError(f"unknown severity {self.severity!r}")
        missing = [k for k in self.identity if k not in self.evidence]
        if missing:
            raise ValueError(f"identity keys {missing} are not in the evidence")

    @property
    def name(self) -> str:
        return BY_CODE[self.code].name

    @property
    def rank(self) -> int:
        return RANK[self.severity]

    @property
    def fingerprint(self) -> str:
        key = [self.code, self.subject, [[k, self.evidence[k]] for k in sorted(self.identity)]]
        return hashlib.sha256(canonical_json(key)).hexdigest()[:16]

    def sort_key(self) -> tuple:
        return (-self.rank, self.code, self.subject, self.fingerprint)

    def to_dict(self) -> dict:
        return {"code": self.code, "name": self.name, "severity": self.severity,
                "subject": self.subject, "message": self.message, "evidence": self.evidence,
                "fix": self.fix, "fingerprint": self.fingerprint}
