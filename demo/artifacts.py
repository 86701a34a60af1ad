"""The artifacts of Acme support, generated as small real files and registered by content.

Checkpoints are directories (config.json, a shared tokenizer.json, random weights.bin), so
their digests are manifests; prompts are text, the retrieval config is JSON, and the two
vendor models are hosted artifacts. Bytes come from the seed: digests are the same every run.
"""

from __future__ import annotations

import json
from pathlib import Path

from modelward.ledger import artifacts as ledger_artifacts

from .world import HOUR, MINUTE, World

ML_LEAD = "maya.chen@acme.example"
ML_ENG = "tomas.lind@acme.example"
PROMPT_OWNER = "priya.raman@acme.example"
PLATFORM = "platform-oncall@acme.example"
WEIGHTS_BYTES = 96 * 1024

SUPPORT_PROMPTS = {
    "v1": "You are Acme's support assistant. Answer the customer's question using only the\n"
          "context below. If the context does not answer it, say so and offer a human agent.\n\n"
          "Context:\n{context}\n\nCustomer ({tier}): {question}\n",
    "v2": "You are Acme's support assistant. Answer the customer's question using only the\n"
          "context below; cite the help-centre article you used. If the context does not\n"
          "answer it, say so and offer a human agent. Never promise refunds.\n\n"
          "Context:\n{context}\n\nCustomer ({tier}): {question}\n",
    "v3": "You are Acme's support assistant. Be brief and concrete. Answer using only the\n"
          "context below and cite the help-centre article you used. If the context does not\n"
          "answer it, or the customer is upset, offer a human agent. Never promise refunds\n"
          "or discuss other customers' accounts.\n\n"
          "Context:\n{context}\n\nCustomer ({tier}, {topic}): {question}\n",
    "v4": "You are Acme's support assistant. Be brief and concrete. For billing questions, ask\n"
          "for the order number first. Answer using only the context below and cite the\n"
          "help-centre article you used. If the context does not answer it, or the customer\n"
          "is upset, offer a human agent. Never promise refunds.\n\n"
          "Context:\n{context}\n\nCustomer ({tier}, {topic}): {question}\n",
}
SUMMARY_PROMPT = ("Summarise this support conversation for the ticket history in at most three\n"
                  "sentences: the customer's problem, what was tried, and the outcome.\n\n"
                  "{transcript}\n")
RETRIEVAL_CONFIG = {"index": "helpcentre", "top_k": 40, "gate": {"metric": "rerank_score",
                    "threshold": 0.4}, "max_context_tokens": 3000}


def _write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def _tokenizer(world: World) -> bytes:
    """The same tokenizer in every checkpoint: one blob shared by five manifests."""
    rng = world.rng("tokenizer")
    pieces = [rng.randbytes(3).hex() for _ in range(2000)]
    return json.dumps({"model": "bpe", "vocab_size": 32000,
                       "vocab_sample": {p: i for i, p in enumerate(pieces)}}).encode()


def checkpoint(world: World, version: str, *, step: int, at: int, owner: str, notes: str,
               parent: str | None = None) -> str:
    """Generate and register chat checkpoint ``chat-<version>``; returns its digest."""
    root = world.staging / "checkpoints" / f"acme-support-7b-{version}"
    config = {"architecture": "LlamaForCausalLM", "base": "acme-base-7b", "hidden_size": 4096,
              "name": "acme-support-7b", "num_layers": 32, "train_step": step,
              "version": version, "notes": notes}
    _write(root / "config.json", json.dumps(config, indent=2, sort_keys=True))
    _write(root / "tokenizer.json", _tokenizer(world))
    _write(root / "weights.bin", world.rng("weights", version).randbytes(WEIGHTS_BYTES))
    parents = [(world.digests[parent], "finetuned-from")] if parent else []
    reg = ledger_artifacts.register_path(
        world.store, "model", root, name="acme-support-7b", version=version, owner=owner,
        parents=parents, meta={"train_step": step}, at=at)
    world.digests[f"chat-{version}"] = reg.artifact.digest
    return reg.artifact.digest


def support_prompt(world: World, version: str, *, at: int) -> str:
    path = _write(world.staging / "prompts" / f"support-{version}.txt", SUPPORT_PROMPTS[version])
    reg = ledger_artifacts.register_path(world.store, "prompt", path, name="support-answer",
                                         version=version, owner=PROMPT_OWNER,
                                         at=at)
    world.digests[f"prompt-{version}"] = reg.artifact.digest
    return reg.artifact.digest


def _small_model(world: World, kind: str, name: str, version: str, at: int) -> str:
    root = world.staging / kind / f"{name}-{version}"
    _write(root / "config.json", json.dumps({"name": name, "version": version}, sort_keys=True))
    _write(root / "model.safetensors", world.rng(kind, version).randbytes(32 * 1024))
    reg = ledger_artifacts.register_path(world.store, kind, root, name=name, version=version,
                                         owner=ML_ENG, at=at)
    return reg.artifact.digest


def register_baseline(world: World, launch: int) -> None:
    """Everything in service from launch day, registered the afternoon before: C1, prompt
    v1, the retrieval substrate and the two hosted models (retiring in the future)."""
    at = launch - 20 * HOUR
    checkpoint(world, "v1.0", step=4000, at=at, owner=ML_LEAD,
               notes="first fine-tune on the ticket archive")
    support_prompt(world, "v1", at=at + 10 * MINUTE)
    world.digests["embedder"] = _small_model(world, "embedder", "support-embed-small", "1.0",
                                             at + 20 * MINUTE)
    world.digests["reranker"] = _small_model(world, "reranker", "support-rerank-base", "1.0",
                                             at + 21 * MINUTE)
    cfg = _write(world.staging / "configs" / "retrieval.json", json.dumps(RETRIEVAL_CONFIG))
    world.digests["retrieval-config"] = ledger_artifacts.register_path(
        world.store, "config", cfg, name="retrieval", version="1", owner=ML_ENG,
        at=at + 25 * MINUTE).artifact.digest
    path = _write(world.staging / "prompts" / "summary-v1.txt", SUMMARY_PROMPT)
    world.digests["summary-prompt"] = ledger_artifacts.register_path(
        world.store, "prompt", path, name="ticket-summary", version="v1", owner=PROMPT_OWNER,
        at=at + 40 * MINUTE).artifact.digest
    world.digests["gpt-4o-mini"] = ledger_artifacts.register_hosted(
        world.store, "openai:gpt-4o-mini", name="ticket-summariser", owner=ML_ENG,
        retires_at=world.day(-150), at=at + 45 * MINUTE).artifact.digest
    world.digests["claude-haiku"] = ledger_artifacts.register_hosted(
        world.store, "anthropic:claude-3-5-haiku-20241022", name="ticket-triage", owner=ML_ENG,
        retires_at=world.day(-300), at=at + 50 * MINUTE).artifact.digest
