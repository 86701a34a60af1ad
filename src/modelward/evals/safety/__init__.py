"""Safety regression against the base: probe suites, the refusal detector, the comparison
(:mod:`.compare`), its summary, and where each fine-tune stands (:mod:`.standing`)."""
