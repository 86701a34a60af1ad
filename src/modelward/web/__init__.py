"""The HTTP surface: JSON API under /api/v1, OTLP ingest, and the dashboard."""
