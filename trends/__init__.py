"""The standard machine-learning modules the trends environments stand on: offline datasets, small model
families, one training loop, transfer, GANs, AutoML search spaces and evaluators, compression and ensembles.

It imports nothing from ``envs`` or ``agents`` (DESIGN.md: scripts -> agents -> envs -> trends). The ski
environment needs none of it; the decision environments of the later trends (AutoML, compression, ensembles)
are built on it.
"""
