"""Feedback into training data by policy: importing feedback, curation policies and the
curation run with its exclusion report."""
