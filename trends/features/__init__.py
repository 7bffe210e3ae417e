"""Automated feature engineering, the AutoML trend applied to tabular data: transformations written as expressions
(:mod:`.transforms`), datasets whose right answer is sometimes known (:mod:`.datasets`), a cached cross-validated
scorer (:mod:`.evaluation`), feature selection and the expand-reduce baseline (:mod:`.selection`). The environment
``trendgym/FeatureEngineering-v0`` searches with them, after Khurana et al. (2018), "Feature Engineering for
Predictive Modeling using Reinforcement Learning", AAAI."""

from trends.features.datasets import FEATURE_DATASETS, KNOWN_FEATURES, TabularData, load_tabular
from trends.features.evaluation import MODELS, FeatureScorer, make_model
from trends.features.featureset import FeatureSet
from trends.features.selection import (
    candidates,
    expand_reduce,
    mutual_information,
    select_by_importance,
    select_mutual_information,
)
from trends.features.transforms import (
    AGGREGATE,
    BINARY,
    COMMUTATIVE,
    OPERATIONS,
    UNARY,
    FeatureBuilder,
    Node,
    build_matrix,
    canonical,
    compose,
    depth,
    finite,
    materialize,
    parse,
)

__all__ = [
    "AGGREGATE",
    "BINARY",
    "COMMUTATIVE",
    "FEATURE_DATASETS",
    "KNOWN_FEATURES",
    "MODELS",
    "OPERATIONS",
    "UNARY",
    "FeatureBuilder",
    "FeatureScorer",
    "FeatureSet",
    "Node",
    "TabularData",
    "build_matrix",
    "candidates",
    "canonical",
    "compose",
    "depth",
    "expand_reduce",
    "finite",
    "load_tabular",
    "make_model",
    "materialize",
    "mutual_information",
    "parse",
    "select_by_importance",
    "select_mutual_information",
]
