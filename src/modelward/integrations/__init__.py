"""Integrations: OpenAI-compatible clients, OpenTelemetry and MLflow.

Each module imports its third-party package lazily (inside the functions that need it),
so ``import modelward`` stays light and an integration costs nothing until it is used:

* :mod:`modelward.integrations.openai` — ``instrument(client, ledger)`` records a decision
  per chat completion, response and embedding call;
* :mod:`modelward.integrations.otel` — ``ModelwardSpanProcessor`` adds resolved digests to
  GenAI spans; :mod:`modelward.web.otlp` ingests them at ``POST /v1/traces``;
* :mod:`modelward.integrations.mlflow` — import MLflow model versions and aliases
  (``modelward import mlflow``); :mod:`modelward.integrations.mlflow_watch` — follow alias
  moves by polling or webhooks (``modelward watch mlflow``).

See docs/integrations.md.
"""
