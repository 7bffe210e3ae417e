"""Ensemble environments (issue 6): choosing the members of an ensemble and their weights."""
