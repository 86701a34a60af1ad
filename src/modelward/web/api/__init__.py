"""JSON API under /api/v1: one module per concept, each exposing ``router``."""

from fastapi import APIRouter

from . import (
    aliases,
    artifacts,
    audit,
    chain,
    decisions,
    evals,
    experiments,
    feedback,
    findings,
    fingerprints,
    people,
    promotions,
    tokens,
)

MODULES = (aliases, artifacts, audit, chain, decisions, evals, experiments, feedback,
           findings, fingerprints, people, promotions, tokens)
router = APIRouter()
for _module in MODULES:
    router.include_router(_module.router)
