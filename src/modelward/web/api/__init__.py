"""JSON API under /api/v1: one module per concept, each exposing ``router``."""

from fastapi import APIRouter

from . import aliases

router = APIRouter()
for _module in (aliases,):
    router.include_router(_module.router)
