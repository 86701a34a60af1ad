"""What the dashboard tests add to a demo ledger (the demo has no experiments, fingerprints
or promotions yet), built through the real ledger and domain APIs:

* ``canary``: a hash-free ``id % 100 < 5`` canary over the demo's users, judged (by MW402
  and the page alike) on the pre-period population the demo's modelward.toml names, a
  third of the treatment exposures lost (a sample ratio mismatch), and the hosted embedder
  swapped halfway (two substrate regimes);
* ``embed/search``: fingerprint runs baseline, same, same, then a rotated embedder
  (changed, epoch 2);
* ``ranker/v1``: alice asks to promote ranker@v2, scored by a fresh eval run; bob and
  carol review it; nobody has opened the evidence yet.
"""

from __future__ import annotations

from types import SimpleNamespace

from modelward.ledger.artifacts import register_hosted
from modelward.registry import promotion
from modelward.rollout.population import read_table
from modelward.timefmt import now_us

from ..registry.promotion_world import (
    ALICE,
    BOB,
    CAROL,
    HOUR,
    ROSTER,
    eval_run,
    move,
    put,
    set_roles,
)
from ..retrieval.test_fingerprint_runs import hosted_embedder, run
from ..rollout.world import DAY, T0, canary_arm, create, expose


def experiment(store, tmp_path) -> SimpleNamespace:
    # MW402's pre_period in the demo's modelward.toml applies to every experiment, this one
    # too: bucket the very users it holds (admins on the low seats of each block of 100)
    from demo.rollout import PRE_PERIOD  # the caller put the repository on sys.path

    users = read_table(store.settings.home_path / PRE_PERIOD).subjects
    create(store, "canary", "unused")
    small = register_hosted(store, "acme:embed-small-2", name="embed-small", kind="embedder",
                            version="2", at=T0 - DAY).artifact.digest
    large = register_hosted(store, "acme:embed-large-1", name="embed-large", kind="embedder",
                            version="1", at=T0 - DAY).artifact.digest
    kept = [(u, canary_arm(u[2:])) for i, u in enumerate(users)
            if not (canary_arm(u[2:]) == "treatment" and i % 3 == 0)]
    half = len(kept) // 2
    n = expose(store, "canary", kept, step=60_000_000,
               embedder_digest=lambda i, s, a: small if i < half else large,
               metric=lambda i, s, a: float((int(s[2:]) * 7919) % 100) / 100
               + (0.05 if a == "treatment" else 0.0))
    return SimpleNamespace(name="canary", exposures=n, embedders=(small, large))


def fingerprints(store) -> SimpleNamespace:
    hosted_embedder(store)
    runs = [run(store, fn, T0 + i * DAY).run
            for i, fn in enumerate(("hashing", "noisy", "noisy", "rotated"))]
    return SimpleNamespace(alias="embed/search", runs=runs)


def promotion_request(store) -> SimpleNamespace:
    from modelward.ledger import people

    v1 = put(store, "model", b"ranker-weights-v1", "ranker", "v1", owner=ALICE)
    v2 = put(store, "model", b"ranker-weights-v2", "ranker", "v2", owner=ALICE)
    prompt = put(store, "prompt", b"Rank these passages for the question.", "rank", "3")
    evalset = put(store, "evalset", b'{"id": "q1", "input": {"q": "refund"}, "expected": "a"}\n',
                  "rank-qa", "1")
    move(store, "ranker/v1", v1, T0)
    people.sync(store, ROSTER, at=T0 - 20 * DAY)
    set_roles(store, "ranker/v1", owners=[ALICE], reviewers=[BOB, CAROL])
    run_id = eval_run(store, evalset=evalset, model=v2, prompt=prompt,
                      finished_at=now_us() - HOUR)
    req = promotion.request(store, "ranker/v1", v2, ALICE, reason="better recall on rank-qa")
    return SimpleNamespace(alias="ranker/v1", v1=v1, v2=v2, run=run_id, request=req.id)


def build(store, tmp_path) -> SimpleNamespace:
    return SimpleNamespace(experiment=experiment(store, tmp_path),
                           fingerprints=fingerprints(store),
                           promotion=promotion_request(store))
