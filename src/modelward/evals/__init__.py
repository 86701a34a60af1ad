"""Evaluation integrity: the harness, contamination scans, representativeness, feedback
curation and the safety suite. Computes and writes its measurements through ``ledger``."""
