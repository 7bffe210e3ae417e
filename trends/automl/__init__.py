"""AutoML ("AI for AI"): search spaces of typed, conditional choices shared by every search method and by the
AutoML environments, and an evaluator that trains a configuration once and records it in an Optuna storage.

It imports nothing from ``envs`` or ``agents``.
"""

from trends.automl.space import SPACES, Categorical, SearchSpace, get_space

__all__ = ["SPACES", "Categorical", "SearchSpace", "get_space"]
