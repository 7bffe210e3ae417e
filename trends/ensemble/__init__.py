"""Ensembles, the course's robustness trend: a pool of diverse members trained once (:mod:`.members`), the rules
that combine them (:mod:`.combine`) and the measures every rule and the ensemble environment share
(:mod:`.metrics`)."""

from trends.ensemble.combine import (
    RULES,
    EnsembleResult,
    average,
    best_single,
    caruana_selection,
    majority_vote,
    soft_vote,
    stacking,
    weighted_average,
)
from trends.ensemble.members import (
    DEFAULT_CACHE,
    MEMBERS,
    MemberRecord,
    NetworkMember,
    SklearnMember,
    build_members,
    describe_members,
    load_pool,
)
from trends.ensemble.metrics import (
    EnsembleScores,
    accuracy,
    check_weights,
    disagreement,
    ensemble_proba,
    evaluate_weights,
    log_loss,
    member_accuracies,
)
from trends.ensemble.pool import MemberPool

__all__ = [
    "DEFAULT_CACHE",
    "MEMBERS",
    "RULES",
    "EnsembleResult",
    "EnsembleScores",
    "MemberPool",
    "MemberRecord",
    "NetworkMember",
    "SklearnMember",
    "accuracy",
    "average",
    "best_single",
    "build_members",
    "caruana_selection",
    "check_weights",
    "describe_members",
    "disagreement",
    "ensemble_proba",
    "evaluate_weights",
    "load_pool",
    "log_loss",
    "majority_vote",
    "member_accuracies",
    "soft_vote",
    "stacking",
    "weighted_average",
]
