"""MW302 of the evaluation issue: a few-shot pool that shares items with the eval set.

The billing assistant's few-shot examples are drawn from a pool file. Pool v2 was
"refreshed" from the same tickets the billing eval set was sampled from: three eval
questions are in it, one verbatim but for case and punctuation, one with a closing thanks
appended, one with its last words reworded. The demo ledger's ``modelward.toml`` lists
the pairs MW302 scans (``[[contamination.pairs]]``): the eval set against pool v2 (the
incident) and against pool v1, written by hand from the help centre (the control).
"""

from __future__ import annotations

import json

from . import subjects
from .episodes import episode
from .world import Expected, World

EVALSET = "evals/billing-evals.jsonl"
TAINTED, CLEAN = "fewshot/billing-pool-v2.jsonl", "fewshot/billing-pool-v1.jsonl"
QUESTIONS = (
    "We were charged twice for the Business plan this month and the second charge has not "
    "dropped off after a week",
    "Our renewal invoice shows twelve seats but we removed four of them before the renewal "
    "date last month",
    "How do I add our company VAT number to past invoices so that finance can reclaim the tax",
    "The card on file expired and now the workspace is locked even though we updated the "
    "card yesterday",
    "Can we switch from monthly to annual billing in the middle of the cycle without paying "
    "twice for the overlap",
    "Why does the invoice for March list a proration credit that is smaller than the seats "
    "we removed",
    "I cancelled the Team plan before the trial ended but the first monthly payment was "
    "still taken from my card",
    "Finance needs every invoice of the last two years as PDF files with our purchase "
    "order number printed on each one",
    "Our reseller says the price went up by fifteen percent but nobody told us about a "
    "price change for our plan",
    "Is it possible to pay by bank transfer instead of card for an Enterprise contract "
    "billed once a year in euros",
    "The refund you promised last week for the duplicate charge still has not arrived on "
    "our company credit card statement",
    "We merged two workspaces and now receive two invoices every month for what should be "
    "one subscription",
)
# How pool v2 copied three of them: as they were but for case and punctuation, with a
# closing thanks appended, and with the last two words reworded.
LEAKED = {0: lambda q: q.upper() + "?!", 4: lambda q: q + ". Thanks in advance for the help",
          10: lambda q: q.rsplit(" ", 2)[0] + " card bill"}
ANSWER = "Sure - here is what to do, step by step, with the help-centre article to cite."
OWN = ("How do I download a receipt for a single payment from the billing page",
       "Where can I change the billing email address that receives the invoices every month",
       "What happens to unused seats when we downgrade from Business to Team mid-cycle",
       "Can I get a quote for fifty extra seats before we commit to the Enterprise plan",
       "Does the annual plan include a discount compared with paying month by month")


def _write(world: World, rel: str, rows: list[dict]) -> None:
    path = world.store.settings.home_path / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _write_config(world: World) -> None:
    """The eval set, both pools and the modelward.toml that pairs them, in the ledger."""
    _write(world, EVALSET, [{"id": f"bill-{i:02d}", "input": q, "expected": "billing"}
                            for i, q in enumerate(QUESTIONS)])
    pool = [{"id": f"shot-{i}", "input": q, "output": ANSWER} for i, q in enumerate(OWN)]
    _write(world, CLEAN, pool)
    leaked = [{"id": f"shot-{len(OWN) + k}", "input": edit(QUESTIONS[i]), "output": ANSWER}
              for k, (i, edit) in enumerate(LEAKED.items())]
    _write(world, TAINTED, pool[:3] + leaked)
    sources = ", ".join(json.dumps(s) for s in world.notes["contamination_sources"])
    with (world.store.settings.home_path / "modelward.toml").open("a") as toml:
        toml.write("\n# demo/contamination.py: the pairs MW302 scans\n[contamination]\n\n"
                   f"[[contamination.pairs]]\nevalset = {json.dumps(EVALSET)}\n"
                   f"against = [{sources}]\n")


def _pair(world: World, source: str) -> None:
    sources = world.notes.setdefault("contamination_sources", [])
    if not sources:
        world.after_write.append(_write_config)
    sources.append(source)


@episode("fewshot-pool-leak", "incident",
         "billing few-shot pool v2 was refreshed from the eval's tickets: 3 eval items in it")
def fewshot_pool_leak(world: World) -> list[Expected]:
    _pair(world, TAINTED)
    return [subjects.by_subject("MW302", "fewshot-pool-leak", TAINTED, contaminated=3)]


@episode("disjoint-pool", "control",
         "billing few-shot pool v1, written from the help centre, shares nothing with the eval")
def disjoint_pool(world: World) -> list[Expected]:
    _pair(world, CLEAN)
    return []
