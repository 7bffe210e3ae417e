"""What ``scripts/compress.py`` does, as functions the tests and benchmarks call: prune or quantize a trained
network (by a search or RL agent in the compression envs, or a fixed rule), compress a trained agent's policy, and
distil a classifier or an agent into a smaller one; each ends in a :class:`~agents.compression.report.Report`
that compares the compressed models with the original."""
