"""The ``[contamination]`` table of modelward.toml: scan defaults and the pairs MW302 scans."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ...errors import ConfigError, ValidationError
from .report import Params

PARAM_KEYS = ("ngram", "shingle", "threshold", "containment", "methods", "max_matches",
              "template_items")
TABLE_KEYS = ("pairs", "runs", *PARAM_KEYS)
PAIR_KEYS = ("evalset", "against", *PARAM_KEYS)


@dataclass(frozen=True)
class Pair:
    evalset: str  # a path (relative to modelward.toml) or a sha256: digest
    against: tuple[str, ...]  # files, directories, digests, aliases
    params: Params


@dataclass(frozen=True)
class ContaminationConfig:
    """The ``[contamination]`` table::

        [contamination]
        ngram = 13                 # defaults for every scan (the CLI's flags override)
        threshold = 0.8
        runs = true                # MW302 also scans eval runs' rendered prompts

        [[contamination.pairs]]
        evalset = "evals/support.jsonl"            # or "sha256:…"
        against = ["prompt/support@production", "sha256:…", "data/pool.jsonl"]
        threshold = 0.9            # any scan option, for this pair only
    """

    params: Params = field(default_factory=Params)
    pairs: tuple[Pair, ...] = ()
    runs: bool = True


def _params(table: dict, base: Params | None, where: str) -> Params:
    values = {k: table[k] for k in PARAM_KEYS if k in table}
    if "methods" in values:
        if isinstance(values["methods"], str) or not isinstance(values["methods"], list):
            raise ConfigError(f"{where}.methods must be a list such as [\"exact\", \"ngram\"]")
        values["methods"] = tuple(values["methods"])
    try:
        return replace(base, **values) if base is not None else Params(**values)
    except ValidationError as exc:
        raise ConfigError(f"{where}.{exc.field}: {exc.detail}", hint=exc.hint) from None


def load_config(table: dict, source: str = "modelward.toml") -> ContaminationConfig:
    """Validate the ``[contamination]`` table; unknown keys are errors naming the key."""
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: [contamination] must be a table")
    for key in table:
        if key not in TABLE_KEYS:
            raise ConfigError(f"{source}: unknown key contamination.{key}",
                              hint="known keys: " + ", ".join(TABLE_KEYS))
    params = _params(table, None, f"{source}: contamination")
    runs = table.get("runs", True)
    if not isinstance(runs, bool):
        raise ConfigError(f"{source}: contamination.runs must be true or false")
    raw = table.get("pairs", [])
    if not isinstance(raw, list):
        raise ConfigError(f"{source}: contamination.pairs must be an array of tables "
                          "([[contamination.pairs]])")
    pairs = []
    for n, entry in enumerate(raw, start=1):
        where = f"{source}: contamination.pairs[{n}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be a table")
        for key in entry:
            if key not in PAIR_KEYS:
                raise ConfigError(f"{where}: unknown key {key!r}",
                                  hint="known keys: " + ", ".join(PAIR_KEYS))
        evalset, against = entry.get("evalset"), entry.get("against")
        if not isinstance(evalset, str) or not evalset.strip():
            raise ConfigError(f"{where}.evalset is required: a path or a sha256: digest")
        if isinstance(against, str):
            against = [against]
        if (not isinstance(against, list) or not against
                or not all(isinstance(a, str) and a.strip() for a in against)):
            raise ConfigError(f"{where}.against must be a non-empty list of sources",
                              hint='e.g. against = ["prompt/support@production", "pool.jsonl"]')
        pairs.append(Pair(evalset.strip(), tuple(a.strip() for a in against),
                          _params(entry, params, where)))
    return ContaminationConfig(params, tuple(pairs), runs)
