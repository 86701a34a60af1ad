"""Retrieval substrate: embedder fingerprints (sentinel probes, noise floors, substrate
epochs) and threshold policies (cuts calibrated to a target pass rate).

Light on purpose: the SDK imports :mod:`.thresholds`; numpy loads only where vectors are
compared."""
