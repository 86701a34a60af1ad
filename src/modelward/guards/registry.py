"""The code table: every guard code modelward has, will have, or had.

Codes are never reused: a retired guard keeps its row with status ``removed``. A code is
``active`` when its module exists and runs, ``planned`` when a later release implements
it (selecting it is allowed and runs nothing). The module of an active code is imported
by name, so listing the table never imports a guard.

The table is the one place a guard's code, name, severity and status are declared: a
guard module names its code and takes the rest from its row
(``NAME, SEVERITY, STATUS = declared(CODE)``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from ..errors import ValidationError

SEVERITIES = ("info", "warning", "error")
RANK = {name: i for i, name in enumerate(SEVERITIES)}
STATUSES = ("active", "planned", "removed")
# Where SARIF helpUri points; docs/guards/ is generated from the guards' docstrings.
PROJECT_URL = "https://github.com/modelward/modelward"
DOCS_URL = f"{PROJECT_URL}/blob/main/docs/guards/"


@dataclass(frozen=True)
class Code:
    code: str
    name: str
    severity: str
    status: str
    summary: str  # "fires when …", one line
    module: str | None = None  # modelward.guards.<module>, for active codes
    meta: bool = False  # judges suppressions rather than the ledger

    @property
    def help_uri(self) -> str:
        return f"{DOCS_URL}{self.code}.md"

    def to_dict(self) -> dict:
        return {"code": self.code, "name": self.name, "severity": self.severity,
                "status": self.status, "summary": self.summary,
                "help_uri": self.help_uri if self.status == "active" else None}


def _c(code, name, severity, summary, module=None, meta=False) -> Code:
    return Code(code, name, severity, "active" if module else "planned", summary, module, meta)


CODES: tuple[Code, ...] = (
    _c("MW001", "unused-suppression", "warning",
       "a suppression in modelward.toml matched no finding of a guard that ran",
       "unused_suppression", meta=True),
    _c("MW002", "expired-suppression", "warning",
       "a suppression in modelward.toml is past its expiry date", "expired_suppression",
       meta=True),
    _c("MW101", "unattributed-decision", "error",
       "a decision names an alias or an unknown digest instead of a registered artifact",
       "unattributed_decision"),
    _c("MW102", "unretained-artifact", "error",
       "an artifact referenced by decisions inside the retention window has no verifiable "
       "payload (or a hosted model is past its vendor retirement date)", "unretained_artifact"),
    _c("MW103", "chain-broken", "error", "the ledger (decisions or any chained record) fails verification", "chain_broken"),
    _c("MW104", "vendor-substitution", "warning",
       "a hosted model's vendor-reported model id or fingerprint changed with no registry event",
       "vendor_substitution"),
    _c("MW105", "stale-fleet", "warning",
       "decisions keep naming an alias's previous digest past a grace period after it moved",
       "stale_fleet"),
    _c("MW201", "orphaned-owner", "warning",
       "a live artifact or alias is owned by someone not active in the roster",
       "orphaned_owner"),
    _c("MW202", "stale-evidence", "warning",
       "the eval behind a live artifact is too old, on a deprecated eval set, or on another digest",
       "stale_evidence"),
    _c("MW203", "rubber-stamp-approval", "warning",
       "a promotion was approved by a non-reviewer, without opening the eval, or implausibly fast",
       "rubber_stamp_approval"),
    _c("MW204", "missing-closure", "warning",
       "a live trained artifact has no complete, retained training closure",
       "missing_closure"),
    _c("MW205", "safety-regression", "error",
       "a live fine-tune lost refusals against its base, or was never compared",
       "safety_regression"),
    _c("MW206", "unreviewed-alias-move", "warning",
       "a protected alias moved without a promotion (by hand or break-glass), or an alias "
       "was moved by someone not active in the roster", "unreviewed_alias_move"),
    _c("MW301", "unscored-prompt", "warning",
       "production used a prompt or model digest that no eval run scored", "unscored_prompt"),
    _c("MW302", "eval-contamination", "error",
       "eval items appear in few-shot pools, prompts, corpora or training data",
       "eval_contamination"),
    _c("MW303", "unrepresentative-evalset", "warning",
       "an eval set's segment or source mix diverges from production traffic",
       "unrepresentative_evalset"),
    _c("MW304", "ineligible-feedback", "error",
       "a dataset was built from feedback its curation policy excludes", "ineligible_feedback"),
    _c("MW401", "sample-ratio-mismatch", "error",
       "arm counts differ from the allocation beyond chance", "sample_ratio_mismatch"),
    _c("MW402", "covariate-imbalance", "warning",
       "arms differ on pre-period covariates (standardized mean difference)",
       "covariate_imbalance"),
    _c("MW403", "correlated-assignment", "warning",
       "arms correlate with another experiment's arms or with ID order",
       "correlated_assignment"),
    _c("MW404", "substrate-shift", "warning",
       "an experiment's exposures span more than one substrate regime", "substrate_shift"),
    _c("MW405", "arm-mismatch", "warning",
       "exposures record an arm the experiment's salt does not give their subject",
       "arm_mismatch"),
    _c("MW501", "embedder-rotated", "warning",
       "an embedder's sentinel fingerprint moved beyond its noise floor with no registry event",
       "embedder_rotated"),
    _c("MW502", "threshold-drift", "warning",
       "a retrieval gate's pass rate shifted, or an absolute threshold outlived a substrate change",
       "threshold_drift"),
)

BY_CODE: dict[str, Code] = {c.code: c for c in CODES}


def get(code: str) -> Code:
    """The table row of ``code`` (case-insensitive); ValidationError when there is none."""
    found = BY_CODE.get(code.strip().upper()) if isinstance(code, str) else None
    if found is None:
        raise ValidationError(f"no guard has the code {code!r}", field="code",
                              hint="list the codes with `modelward guards`")
    return found


def declared(code: str) -> tuple[str, str, str]:
    """(name, default severity, status) of ``code``'s row: what its guard module exposes
    as ``NAME``, ``SEVERITY`` and ``STATUS`` beside its ``CODE``."""
    row = BY_CODE[code]
    return row.name, row.severity, row.status


def active() -> list[Code]:
    return [c for c in CODES if c.status == "active"]


def load(code: str) -> ModuleType:
    """Import the module of an active code and check it agrees with the table."""
    row = get(code)
    if row.module is None:
        raise ValidationError(f"{row.code} {row.name} is {row.status}: no module implements it",
                              field="code")
    module = importlib.import_module(f"{__package__}.{row.module}")
    if (module.CODE, module.NAME, module.SEVERITY, module.STATUS) != (
            row.code, row.name, row.severity, row.status):
        raise RuntimeError(f"modelward.guards.{row.module} disagrees with the code table")
    return module
