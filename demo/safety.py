"""MW205 of the model-lifecycle issue: a fine-tune that lost its refusals against its base.

The support team tuned two assistants from the same base, both under ``modelward closure
capture`` (so MW204 has nothing to say): ``sft-chatty`` on friendly transcripts, which
now complies with harmful requests, and ``sft-careful``, which kept refusing. Both were
compared with the base by ``modelward.evals.safety.compare.compare`` on the shipped ``safety-v1``
suite (216 requests), with the deterministic runner ``demo.runner:safety`` called
in-process: the chatty one failed (MW205 ``regressed``), the careful one passed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from modelward.evals.safety import compare as safety
from modelward.ledger import aliases as ledger_aliases
from modelward.ledger import people as ledger_people
from modelward.registry.closure import capture as closure

from . import artifacts, runner, subjects
from .episodes import episode
from .lifecycle import _small
from .world import DAY, Expected, World

CHATTY_ALIAS, CAREFUL_ALIAS = "assistant/chatty", "assistant/careful"
RUNNER = "demo.runner:safety"
TUNE_SCRIPT = '''\
"""Fine-tune the assistant: a deterministic toy (records the base and the data's size)."""
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
open(sys.argv[2], "w").write(json.dumps({"style": sys.argv[3], "examples": len(rows)}))
'''


def _base(world: World) -> str:
    if "assistant-base-v1" not in world.digests:
        _small(world, "assistant-base", "v1", artifacts.ML_LEAD, world.now - 90 * DAY)
    return world.digests["assistant-base-v1"]


def _tune(w: World, style: str, alias: str, compliant: bool) -> str:
    """Capture the fine-tune (a closure naming its base), point ``alias`` at it, compare it
    with the base for safety; returns the fine-tune's digest."""
    base = w.digests["assistant-base-v1"]
    with tempfile.TemporaryDirectory(prefix="modelward-demo-tune-") as tmp:
        repo = Path(tmp)
        (repo / "tune.py").write_text(TUNE_SCRIPT)
        (repo / "data.jsonl").write_text("".join(
            json.dumps({"text": f"{style} transcript {i}"}) + "\n" for i in range(12)))
        git = ["git", "-c", "user.name=Acme CI", "-c", "user.email=ci@acme.example"]
        for args in (["init", "-q"], ["add", "tune.py"], ["commit", "-q", "-m", "tuner"]):
            subprocess.run(git + args, cwd=repo, check=True, capture_output=True)
        spec = closure.CaptureSpec(
            name=f"sft-{style}", command=[sys.executable, "tune.py", "data.jsonl", "out.json",
                                          style],
            output=Path("out.json"), inputs=("data.jsonl",), base=base, seeds=(7,), cwd=repo)
        made = closure.capture(w.store, spec, sink=lambda _b: None)
    if made.closure.status != "complete" or made.artifact is None:
        raise RuntimeError(f"the demo's fine-tune capture is {made.closure.status}")
    digest = made.artifact.digest
    w.digests[f"sft-{style}"] = digest
    with w.store.write() as conn:
        ledger_people.set_roles(conn, alias, owners=[artifacts.ML_ENG],
                                reviewers=[artifacts.ML_LEAD, artifacts.PLATFORM],
                                at=w.now - 3 * DAY)
        ledger_aliases.set_alias(conn, alias, digest, actor=artifacts.ML_ENG,
                                 reason=f"{style} fine-tune of assistant-base",
                                 at=w.now - 2 * DAY)
    if compliant:
        runner.COMPLIANT.add(digest)
    run = safety.compare(w.store, safety.SafetySpec(base=base, candidate=digest, runner=RUNNER))
    w.notes[f"safety-{style}"] = run.id
    return digest


@episode("refusals-lost", "incident",
         "assistant/chatty, tuned on friendly transcripts, now answers what its base refused")
def refusals_lost(world: World) -> list[Expected]:
    _base(world)
    world.after_write.append(lambda w: _tune(w, "chatty", CHATTY_ALIAS, compliant=True))
    return [subjects.by_subject("MW205", "refusals-lost", "{sft-chatty}", problem="regressed")]


@episode("refusals-kept", "control",
         "assistant/careful, tuned from the same base, still refuses: its comparison passed")
def refusals_kept(world: World) -> list[Expected]:
    _base(world)
    world.after_write.append(lambda w: _tune(w, "careful", CAREFUL_ALIAS, compliant=False))
    return []
