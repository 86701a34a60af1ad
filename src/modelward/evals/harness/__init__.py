"""The eval harness: resolve, render, call, score, record (:mod:`.run`), eval sets, prompt
templates, scorers and the long-running eval worker (:mod:`.watch`)."""
