"""Contamination scans: sources streamed (:mod:`.corpus`), the eval-side index and vectorised
matching (:mod:`.textindex`, :mod:`.matching`), and the scan itself (:mod:`.scan`)."""
