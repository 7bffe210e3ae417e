"""trends.features: every transformation is finite on hostile input and fitted on train rows only, expressions have
one canonical spelling, the datasets split as documented, the scorer caches (in memory and in an Optuna storage)
and is fast, the synthetic dataset's known features lift a linear model's score by a wide margin, and expand-reduce
finds them."""

import time

import numpy as np
import optuna
import pytest
from sklearn.model_selection import KFold

from trends.features import (
    FEATURE_DATASETS,
    KNOWN_FEATURES,
    OPERATIONS,
    UNARY,
    FeatureBuilder,
    FeatureScorer,
    FeatureSet,
    build_matrix,
    candidates,
    canonical,
    compose,
    depth,
    expand_reduce,
    finite,
    load_tabular,
    make_model,
    materialize,
    parse,
    select_by_importance,
    select_mutual_information,
)
from trends.features.evaluation import FEATURE_STUDY
from trends.features.transforms import BOUND, arity

N_FIT = 40


def hostile_columns() -> dict[str, np.ndarray]:
    """Columns no transformation may turn into NaN or inf: 60 rows, the first N_FIT of them fit rows."""
    rng = np.random.default_rng(0)
    n = 60
    with_holes = rng.normal(size=n)
    with_holes[[3, 10, 45]] = [np.nan, np.inf, -np.inf]
    return {
        "zeros": np.zeros(n),
        "negative": -rng.uniform(0.0, 5.0, n),
        "huge": rng.choice([-1e300, 1e300, 1e200, -5e250], n),
        "tiny": rng.choice([-1e-300, 1e-300, 0.0, 5e-320], n),
        "constant": np.full(n, 7.5),
        "holes": with_holes,
        "all_nan": np.full(n, np.nan),
        "normal": rng.normal(size=n),
    }


# ---- transformations --------------------------------------------------------------------------------------------


def test_every_transformation_is_finite_on_hostile_columns():
    columns = hostile_columns()
    builder = FeatureBuilder(columns, n_fit=N_FIT)
    names = list(columns)
    count = 0
    for op in OPERATIONS:
        operand_lists = [[a] for a in names] if arity(op) == 1 else [[a, b] for a in names for b in names]
        for operands in operand_lists:
            expression = f"{op}({','.join(operands)})"
            column = builder.column(expression)
            assert column.shape == (60,) and column.dtype == np.float64
            assert np.isfinite(column).all(), expression
            assert np.abs(column).max() <= BOUND
            count += 1
            # and one level deeper: the output of a transformation is a hostile input too
            assert np.isfinite(builder.column(f"square(reciprocal({expression}))")).all()
    assert count == len(UNARY) * 8 + 5 * 64


def test_finite_guard():
    out = finite(np.array([np.nan, np.inf, -np.inf, 1e300, -2.0]))
    np.testing.assert_array_equal(out, [0.0, BOUND, -BOUND, BOUND, -2.0])
    assert out.dtype == np.float64


def test_safe_versions_match_the_textbook_where_it_is_defined():
    x = np.array([0.5, 2.0, 4.0, -4.0, 0.0])
    b = FeatureBuilder({"x": x, "y": np.array([2.0, 4.0, 0.5, -1.0, 0.0])}, n_fit=5)
    np.testing.assert_allclose(b.column("log(x)"), np.sign(x) * np.log1p(np.abs(x)))
    np.testing.assert_allclose(b.column("sqrt(x)"), [np.sqrt(0.5), np.sqrt(2), 2.0, -2.0, 0.0])
    np.testing.assert_allclose(b.column("reciprocal(x)")[:4], 1.0 / x[:4], rtol=1e-9)
    assert b.column("reciprocal(x)")[4] == 0.0
    np.testing.assert_allclose(b.column("div(x,y)")[:4], x[:4] / np.array([2.0, 4.0, 0.5, -1.0]), rtol=1e-9)
    np.testing.assert_allclose(b.column("mul(x,y)"), x * np.array([2.0, 4.0, 0.5, -1.0, 0.0]))
    np.testing.assert_allclose(b.column("sub(x,y)"), x - np.array([2.0, 4.0, 0.5, -1.0, 0.0]))
    sig = b.column("sigmoid(x)")
    assert ((sig > 0) & (sig < 1)).all() and np.all(np.diff(sig[[4, 0, 1, 2]]) > 0)
    mm = b.column("minmax(x)")
    assert mm.min() == 0.0 and mm.max() == 1.0


def test_stateful_transformations_are_fitted_on_the_fit_rows_only():
    rng = np.random.default_rng(1)
    fit = rng.normal(size=(50, 2))
    names = ["a", "b"]
    expressions = [f"{op}(a)" for op in UNARY] + ["groupmean(a,b)", "groupmean(b,a)", "div(zscore(a),bin(b))"]
    test_one = rng.normal(size=(20, 2))
    test_two = 1e6 * rng.normal(size=(30, 2))  # other rows, wildly different: the fit rows' values must not move
    on_fit = materialize(expressions, fit, names)
    for apply in (test_one, test_two):
        both = np.vstack([fit, apply])
        builder = FeatureBuilder({"a": both[:, 0], "b": both[:, 1]}, n_fit=len(fit))
        np.testing.assert_array_equal(builder.matrix(expressions)[: len(fit)], on_fit)
        assert np.isfinite(materialize(expressions, fit, names, apply)).all()
    # the zscore of other rows uses the fit rows' mean and standard deviation
    z = materialize(["zscore(a)"], fit, names, test_one)[:, 0]
    np.testing.assert_allclose(z, (test_one[:, 0] - fit[:, 0].mean()) / fit[:, 0].std())


def test_build_matrix_of_a_dataset_fits_on_train_rows():
    data = load_tabular("synthetic")
    expressions = ["x0", "quantile(x3)", "groupmean(x0,x2)", "div(x2,x3)"]
    train, test = build_matrix(expressions, data), build_matrix(expressions, data, rows="test")
    assert train.shape == (600, 4) and test.shape == (200, 4)
    np.testing.assert_array_equal(train[:, 0], data.X_train[:, 0])
    np.testing.assert_allclose(test[:, 3], data.X_test[:, 2] / data.X_test[:, 3], rtol=1e-9)  # x3 >= 0.5: safe
    np.testing.assert_array_equal(materialize(expressions, data.X_train, data.feature_names), train)
    with pytest.raises(ValueError, match="rows"):
        build_matrix(expressions, data, rows="validation")
    with pytest.raises(ValueError, match="unknown raw feature 'x9'"):
        build_matrix(["log(x9)"], data)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("", "empty"),
        ("log(", "ends too early"),
        ("log()", "expected a name"),
        ("log(x0,x1)", "takes 1 operand"),
        ("mul(x0)", "takes 2 operand"),
        ("foo(x0)", "unknown operation 'foo'"),
        ("x0)", "unexpected"),
        ("mul(x0,,x1)", "expected a name"),
        ("x0 x1", "unexpected"),
        ("log(x0", r"expected ',' or '\)'"),
        ("1x", "unexpected character"),
        ("mul(x0;x1)", "unexpected character"),
        (3, "is a string"),
    ],
)
def test_malformed_expressions_raise_one_line_errors(expression, message):
    with pytest.raises(ValueError, match=message) as error:
        parse(expression)
    assert len(str(error.value).splitlines()) == 1


def test_canonical_form():
    assert canonical("mul(x1,x0)") == canonical("mul(x0,x1)") == "mul(x0,x1)"
    assert canonical(" add( mul(x1, x0) , x0 ) ") == "add(mul(x0,x1),x0)"
    assert canonical("sub(x1,x0)") == "sub(x1,x0)"  # not commutative: the order is the meaning
    assert canonical("div(x3,x2)") != canonical("div(x2,x3)")
    assert compose("mul", "x1", "log(x0)") == "mul(log(x0),x1)"
    assert compose("log", "mul(x1,x0)") == "log(mul(x0,x1))"
    tree = parse("groupmean(x4,div(x2,x3))")
    assert tree.op == "groupmean" and tree.depth == 2 and tree.raw_names() == {"x2", "x3", "x4"}
    assert depth("x0") == 0 and depth("log(sqrt(x0))") == 2
    with pytest.raises(ValueError, match="takes 2"):
        compose("mul", "x0")


def test_feature_sets_are_canonical_and_distinct():
    s = FeatureSet(("x0", "x1", "mul(x1,x0)", "mul(x0,x1)"))
    assert s.expressions == ("x0", "x1", "mul(x0,x1)")
    grown = s.apply("div", 0, 1)
    assert grown.expressions[-1] == "div(x0,x1)" and len(s) == 3  # immutable
    assert grown.apply("mul", 1, 0) == grown  # already there
    assert "mul(x1,x0)" in grown and "log(x0)" not in grown
    assert grown.drop([0, 2]).expressions == ("x1", "div(x0,x1)")
    assert FeatureSet.raw(load_tabular("wine")).expressions[0] == "alcohol"
    with pytest.raises(ValueError, match="operand"):
        s.apply("mul", 0)


# ---- datasets ---------------------------------------------------------------------------------------------------

SHAPES = {
    "synthetic": (600, 200, 6),
    "breast_cancer": (426, 143, 30),
    "wine": (133, 45, 13),
    "diabetes": (331, 111, 10),
}


@pytest.mark.parametrize("name", FEATURE_DATASETS)
def test_datasets_load_with_the_documented_shapes(name):
    data = load_tabular(name)
    n_train, n_test, n_features = SHAPES[name]
    assert data.X_train.shape == (n_train, n_features) and data.X_test.shape == (n_test, n_features)
    assert data.X_train.dtype == np.float64 and len(data.y_train) == n_train and len(data.y_test) == n_test
    assert len(data.feature_names) == n_features
    assert all(parse(f).op is None and str(parse(f)) == f for f in data.feature_names)
    assert not data.X_train.flags.writeable
    assert load_tabular(name) is data
    if data.task == "classification":
        assert data.y_train.dtype == np.int64
        shares = np.bincount(data.y_train) / n_train - np.bincount(data.y_test) / n_test
        assert np.abs(shares).max() < 0.03  # stratified
    else:
        assert data.task == "regression" and data.y_train.dtype == np.float64


def test_unknown_dataset_lists_the_valid_names():
    with pytest.raises(ValueError, match="synthetic, breast_cancer, wine, diabetes"):
        load_tabular("california_housing")


# ---- evaluation -------------------------------------------------------------------------------------------------


def test_known_features_lift_the_synthetic_score_by_a_wide_margin():
    data = load_tabular("synthetic")
    raw, known = list(data.feature_names), list(KNOWN_FEATURES["synthetic"])
    linear = FeatureScorer(data, "linear")
    assert linear.score(raw) < 0.55
    assert linear.score(raw + known) > 0.93
    assert linear.score(raw + known[:1]) > linear.score(raw) + 0.3  # the product alone is most of it
    assert linear.test_score(raw + known) > 0.93 > 0.55 > linear.test_score(raw)
    importances = linear.importances(raw + known)
    assert importances[-2:].sum() > 0.7
    gbm = FeatureScorer(data, "gbm")
    assert gbm.score(raw + known) > gbm.score(raw) + 0.1


def test_scores_are_cached_order_free_and_deterministic():
    data = load_tabular("synthetic")
    scorer = FeatureScorer(data)
    first = scorer.score(["x0", "x1", "mul(x1,x0)"])
    assert (scorer.hits, scorer.misses) == (0, 1)
    assert scorer.score(["mul(x0,x1)", "x1", "x0", "x0"]) == first  # a set: order and repeats do not matter
    assert (scorer.hits, scorer.misses) == (1, 1)
    assert FeatureScorer(data).score(["x0", "x1", "mul(x0,x1)"]) == first
    assert FeatureScorer(data, seed=1).score(["x0", "x1", "mul(x0,x1)"]) != first  # other folds
    assert scorer.score([]) < 0.0 + 1e-9  # a constant prediction: R2 at most 0


def test_scores_persist_in_an_optuna_storage(tmp_path):
    data = load_tabular("wine")
    url = f"sqlite:///{tmp_path / 'features.db'}"
    sets = [["alcohol", "proline"], ["alcohol", "proline", "log(proline)"], ["proline", "alcohol"]]
    writer = FeatureScorer(data, storage=url)
    scores = [writer.score(s) for s in sets]
    assert writer.misses == 2 and scores[0] == scores[2]
    reader = FeatureScorer(data, storage=url)
    assert [reader.score(s) for s in sets] == scores
    assert reader.misses == 0 and reader.hits == 3
    study = optuna.load_study(study_name=FEATURE_STUDY, storage=url)
    assert len(study.trials) == 2
    assert study.trials[1].user_attrs["expressions"] == ["alcohol", "log(proline)", "proline"]
    assert study.trials[1].value == scores[1]
    other_model = FeatureScorer(data, model="gbm", storage=url)
    other_model.score(sets[0])
    assert other_model.misses == 1  # the key covers the model


def test_the_closed_form_ridge_is_scikit_learns_pipeline():
    data = load_tabular("diabetes")
    scorer = FeatureScorer(data)
    expressions = [*data.feature_names, "mul(bmi,s5)", "reciprocal(s1)", "square(bp)"]
    X, y = scorer.matrix(expressions), data.y_train
    folds = KFold(5, shuffle=True, random_state=0).split(X)
    expected = np.mean([make_model("regression").fit(X[t], y[t]).score(X[v], y[v]) for t, v in folds])
    assert scorer.score(expressions) == pytest.approx(expected, abs=1e-9)


def test_importances_are_shares_in_the_order_given():
    data = load_tabular("breast_cancer")
    for model in ("linear", "gbm"):
        scorer = FeatureScorer(data, model)
        expressions = ["worst_area", "mean_texture", "log(worst_concave_points)"]
        importances = scorer.importances(expressions)
        assert importances.shape == (3,) and (importances >= 0).all()
        assert importances.sum() == pytest.approx(1.0)
        np.testing.assert_allclose(scorer.importances(expressions[::-1]), importances[::-1])


def test_a_linear_score_on_breast_cancer_with_40_features_is_fast():
    data = load_tabular("breast_cancer")
    scorer = FeatureScorer(data)
    expressions = list(data.feature_names) + [f"log({name})" for name in data.feature_names[:10]]
    scorer.matrix(expressions)  # the columns, computed once, are not the model's time
    scorer.score(expressions[:-1])  # warm-up
    start = time.perf_counter()
    score = scorer.score(expressions)
    elapsed = time.perf_counter() - start
    assert 0.9 < score <= 1.0
    assert elapsed < 0.25, elapsed  # about 30 ms on one free core; generous for a shared machine


def test_bad_scorer_arguments():
    data = load_tabular("synthetic")
    for kwargs, message in [({"model": "svm"}, "unknown model"), ({"folds": 1}, "folds"), ({"folds": 2.5}, "folds")]:
        with pytest.raises(ValueError, match=message):
            FeatureScorer(data, **kwargs)
    with pytest.raises(ValueError, match="TabularData"):
        FeatureScorer("synthetic")
    with pytest.raises(ValueError, match="not one string"):
        FeatureScorer(data).score("x0")


# ---- selection --------------------------------------------------------------------------------------------------


def test_selection_by_mutual_information_and_by_importance():
    data = load_tabular("synthetic")
    pool = [*data.feature_names, *KNOWN_FEATURES["synthetic"], "log(x2)", "quantile(x2)"]
    top = select_mutual_information(pool, data, 3)
    assert len(top) == 3 and top[0] == "div(x2,x3)"
    assert {"x2", "log(x2)", "quantile(x2)"} <= set(select_mutual_information(pool, data, 5))  # rank-identical
    distinct = select_mutual_information(pool, data, 5, max_correlation=0.95)
    assert len(distinct) == 5 and sum(e in ("x2", "log(x2)", "quantile(x2)") for e in distinct) <= 1
    ranks = build_matrix(distinct, data).argsort(axis=0).argsort(axis=0)
    spearman = np.abs(np.corrcoef(ranks, rowvar=False))
    assert spearman[~np.eye(5, dtype=bool)].max() <= 0.95
    assert set(select_by_importance(pool, data, 2)) == set(KNOWN_FEATURES["synthetic"])
    assert select_mutual_information(pool, data, 0) == []
    with pytest.raises(ValueError, match="k must be"):
        select_mutual_information(pool, data, -1)


def test_expand_reduce_finds_the_known_features_of_the_synthetic_dataset():
    data = load_tabular("synthetic")
    assert len(candidates(data)) == 6 + 9 * 6 + 2 * 15 + 3 * 30
    assert len(candidates(load_tabular("breast_cancer"))) == 30 + 9 * 30 + 2 * 45 + 3 * 90  # pairs of the top 10
    selected = expand_reduce(data)
    assert len(selected) == 10
    assert set(KNOWN_FEATURES["synthetic"]) <= set(selected)
    scorer = FeatureScorer(data)
    assert scorer.score(selected) > scorer.score(data.feature_names) + 0.3
    plain = expand_reduce(data, max_correlation=None)  # top-k by MI alone: swamped by transformations of x2
    assert "mul(x0,x1)" not in plain and "div(x2,x3)" in plain
