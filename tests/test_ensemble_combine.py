"""Combination rules and ensemble measures on small synthetic pools whose right answers are known."""

import itertools

import numpy as np
import pytest
import sklearn.metrics

from trends.ensemble import (
    RULES,
    MemberPool,
    accuracy,
    average,
    best_single,
    caruana_selection,
    check_weights,
    disagreement,
    ensemble_proba,
    evaluate_weights,
    log_loss,
    majority_vote,
    stacking,
    weighted_average,
)


def make_pool(val_proba, y_val, test_proba=None, y_test=None) -> MemberPool:
    """A pool whose test split is its validation split unless given: most tests only look at validation."""
    val_proba = np.asarray(val_proba, dtype=np.float32)
    test_proba = val_proba if test_proba is None else np.asarray(test_proba, dtype=np.float32)
    y_test = y_val if y_test is None else y_test
    names = tuple(f"m{i}" for i in range(len(val_proba)))
    return MemberPool("synthetic", names, val_proba, test_proba, np.asarray(y_val), np.asarray(y_test))


def random_pool(members=8, n=120, classes=4, seed=0) -> MemberPool:
    """Members of graded skill: member m's logits are the one-hot label times m/2 plus unit noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(classes, size=n)
    logits = np.arange(members)[:, None, None] / 2 * np.eye(classes)[y] + rng.normal(size=(members, n, classes))
    proba = np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)
    return make_pool(proba, y)


def confident(labels, classes, p=0.9):
    """Rows putting ``p`` on ``labels`` and the rest evenly on the other classes."""
    rows = np.full((len(labels), classes), (1 - p) / (classes - 1))
    rows[np.arange(len(labels)), labels] = p
    return rows


def test_measures_agree_with_sklearn_and_work_on_stacks():
    pool = random_pool()
    for proba in pool.val_proba:
        assert accuracy(proba, pool.y_val) == pytest.approx(sklearn.metrics.accuracy_score(pool.y_val, proba.argmax(1)))
        assert log_loss(proba, pool.y_val) == pytest.approx(sklearn.metrics.log_loss(pool.y_val, proba), rel=1e-5)
    stacked = accuracy(pool.val_proba, pool.y_val)
    assert stacked.shape == (pool.n_members,)
    assert stacked[-1] > stacked[0]  # the graded skills are there
    assert log_loss(np.eye(4)[[1, 1]], np.array([0, 1])) == pytest.approx(-np.log(np.finfo(np.float32).eps) / 2)


def test_ensemble_proba_is_the_normalised_weighted_mean_and_bad_weights_are_refused():
    pool = random_pool(members=3)
    mixed = ensemble_proba(pool.val_proba, [2, 0, 2])
    np.testing.assert_allclose(mixed, (pool.val_proba[0] + pool.val_proba[2]) / 2, rtol=1e-6)
    np.testing.assert_allclose(mixed.sum(axis=1), 1, rtol=1e-6)
    for bad in ([1, 1], [1, -1, 1], [0, 0, 0], [np.nan, 1, 1]):
        with pytest.raises(ValueError):
            check_weights(bad, 3)
    scores = evaluate_weights(pool, [0, 0, 1])
    assert scores.val_accuracy == pytest.approx(accuracy(pool.val_proba[2], pool.y_val))
    assert scores.test_log_loss == pytest.approx(log_loss(pool.test_proba[2], pool.y_test))


def test_disagreement_counts_differing_decisions_per_member():
    y = np.array([0, 1, 2, 0])
    members = np.stack([confident(y, 3), confident([0, 1, 2, 1], 3), confident([1, 2, 0, 1], 3)])
    assert disagreement(members[0], confident(y, 3)) == 0.0
    np.testing.assert_allclose(disagreement(members, confident(y, 3)), [0.0, 0.25, 1.0])


def test_every_weighting_rule_gives_non_negative_weights_summing_to_one():
    pool = random_pool()
    for name, rule in RULES.items():
        result = rule(pool)
        assert result.test_predictions.shape == pool.y_test.shape
        if name == "stacking":
            assert result.weights is None
            continue
        assert result.weights.shape == (pool.n_members,)
        assert result.weights.min() >= 0
        assert result.weights.sum() == pytest.approx(1.0)
        if name != "majority_vote":  # a vote mixes decisions, not probabilities
            np.testing.assert_allclose(result.val_proba, ensemble_proba(pool.val_proba, result.weights), rtol=1e-6)


def complementary_pool() -> MemberPool:
    """Member 0 is right (confidently) on samples 0-59 and unsure elsewhere, member 1 on samples 40-99, member 2 on
    samples 0-61, like member 0 but slightly better: the best single member. Member 2 with member 1 is right
    everywhere; the two best singles together (2 and 0) only where member 2 is."""
    n, classes = 100, 3
    y = np.arange(n) % classes
    unsure = np.full((n, classes), 0.3)
    unsure[np.arange(n), (y + 1) % classes] = 0.4  # an unsure member leans to a wrong class

    def right_on(samples):
        rows = unsure.copy()
        rows[samples] = confident(y[samples], classes)
        return rows

    return make_pool([right_on(slice(0, 60)), right_on(slice(40, 100)), right_on(slice(0, 62))], y)


def test_caruana_picks_the_complementary_pair_not_the_two_best_singles():
    pool = complementary_pool()
    assert best_single(pool).details["member"] == "m2"
    assert evaluate_weights(pool, [1, 0, 1]).val_accuracy == pytest.approx(0.62)
    result = caruana_selection(pool, max_steps=5)
    np.testing.assert_allclose(result.weights, [0, 0.5, 0.5])
    assert result.scores.val_accuracy == 1.0


def test_with_replacement_a_strong_member_is_picked_several_times():
    """Log-loss of w * strong + (1 - w) * weak on these samples is lowest near w = 0.75 (the derivative vanishes at
    w = 0.747), which selection with replacement reaches as strong, strong, strong, weak."""
    y = np.zeros(10, dtype=np.int64)
    strong = confident(y, 2, 0.9)
    strong[8:] = confident(y[8:], 2, 0.05)  # strong is confidently wrong on the last two samples
    weak = confident(y, 2, 0.3)
    weak[8:] = confident(y[8:], 2, 0.9)
    pool = make_pool([weak, strong], y)
    result = caruana_selection(pool, metric="log_loss", max_steps=10)
    np.testing.assert_allclose(result.weights, [0.25, 0.75])
    np.testing.assert_array_equal(result.details["counts"], [1, 3])
    brute_force = min(
        itertools.product(range(11), repeat=2),
        key=lambda c: evaluate_weights(pool, c).val_log_loss if sum(c) else np.inf,
    )
    assert brute_force[1] / sum(brute_force) == pytest.approx(0.75)


def test_caruana_never_ends_below_its_start_and_no_steps_is_the_best_single():
    pool = random_pool(seed=3)
    np.testing.assert_allclose(caruana_selection(pool, max_steps=0).weights, best_single(pool).weights)
    top3 = np.argsort(-accuracy(pool.val_proba, pool.y_val), kind="stable")[:3]
    start = evaluate_weights(pool, np.isin(np.arange(pool.n_members), top3).astype(float))
    result = caruana_selection(pool, sorted_init_n=3)
    assert result.details["counts"][top3].min() >= 1
    assert result.scores.val_accuracy >= max(start.val_accuracy, best_single(pool).scores.val_accuracy)
    by_loss = caruana_selection(pool, metric="log_loss", sorted_init_n=3)  # here the same three start
    assert by_loss.scores.val_log_loss <= start.val_log_loss
    greedy = caruana_selection(pool, metric="log_loss")
    assert greedy.scores.val_log_loss <= log_loss(pool.val_proba, pool.y_val).min()


def test_bagged_selection_is_seeded():
    pool = random_pool(members=10, seed=1)
    first = caruana_selection(pool, bags=8, seed=4).weights
    np.testing.assert_array_equal(first, caruana_selection(pool, bags=8, seed=4).weights)
    assert not np.array_equal(first, caruana_selection(pool, bags=8, seed=5).weights)
    assert first.sum() == pytest.approx(1.0)
    assert np.count_nonzero(first) > np.count_nonzero(caruana_selection(pool).weights)  # bags spread the weight


def test_bad_caruana_arguments_are_refused():
    pool = random_pool(members=3)
    with pytest.raises(ValueError, match="accuracy"):
        caruana_selection(pool, metric="f1")
    with pytest.raises(ValueError):
        caruana_selection(pool, bag_fraction=0)


def test_majority_vote_counts_decisions_where_averaging_follows_confidence():
    y = np.array([0])
    sure_zero = [[0.99, 0.01]]
    barely_one = [[0.45, 0.55]]
    pool = make_pool([sure_zero, barely_one, barely_one], y)
    assert majority_vote(pool).test_predictions.tolist() == [1]
    assert average(pool).test_predictions.tolist() == [0]
    assert majority_vote(pool, weights=[3, 1, 1]).test_predictions.tolist() == [0]


def test_weighted_average_gives_a_member_at_chance_no_say():
    y = np.arange(40) % 4
    rng = np.random.default_rng(0)
    chance = confident((y + 1) % 4, 4, 0.7)  # always wrong: below chance
    good = confident(np.where(rng.random(40) < 0.9, y, (y + 2) % 4), 4, 0.6)
    result = weighted_average(make_pool([chance, good], y))
    np.testing.assert_allclose(result.weights, [0, 1])
    np.testing.assert_allclose(weighted_average(make_pool([chance, good], y), [1, 3]).weights, [0.25, 0.75])


def test_stacking_learns_what_no_weighting_can():
    """Member 0 always names the next class (y + 1) mod 4 and member 1 is noise: every weighting of them is wrong
    almost always, but the meta-learner learns the relabelling, and its cross-validated score says so."""
    rng = np.random.default_rng(0)
    y = rng.integers(4, size=200)
    shifted = confident((y + 1) % 4, 4, 0.8)
    noise = rng.dirichlet(np.ones(4), size=200)
    pool = make_pool([shifted, noise], y)
    assert average(pool).scores.val_accuracy < 0.4
    result = stacking(pool, seed=0)
    assert result.details["cv_val_accuracy"] > 0.95
    assert result.scores.test_accuracy > 0.95
    np.testing.assert_allclose(result.test_proba.sum(axis=1), 1, rtol=1e-6)
