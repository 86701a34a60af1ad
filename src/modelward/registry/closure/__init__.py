"""Training closures: capture (:mod:`.capture`), the code and environment halves
(:mod:`.git`, :mod:`.env`), their status, and reproduce-and-verify (:mod:`.reproduce`)."""
