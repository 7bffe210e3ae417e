"""Benchmarks whose tables the README shows: each measures, then writes ``docs/bench/<name>.md`` and ``.json``
and its README section through :mod:`agents.benchmarks.report`. ``scripts/bench.py`` runs them."""
