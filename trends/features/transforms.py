"""Feature transformations over tabular data, written as expressions, and their safe evaluation.

A feature is an expression string: a raw feature is its name (``x0``, ``mean_radius``), a derived one an operation
applied to other features, ``log(x0)``, ``mul(x0,x1)``, ``groupmean(x4,div(x2,x3))``. The string is the feature's
identity everywhere (in a feature set, a cache key, a trial record, a plot), so it has one canonical form
(:func:`canonical`): no spaces, and the two operands of a commutative operation (``add``, ``mul``) sorted, so that
``mul(x1,x0)`` and ``mul(x0,x1)`` are the same feature.

The operations are those of Khurana et al. (2018), "Feature Engineering for Predictive Modeling using Reinforcement
Learning", AAAI, and of the expand-reduce methods they compare with (Kanter & Veeramachaneni's Deep Feature
Synthesis; Katz et al.'s ExploreKit):

* :data:`UNARY`: ``log``, ``sqrt``, ``square``, ``reciprocal``, ``zscore``, ``minmax``, ``quantile``, ``bin``,
  ``sigmoid``;
* :data:`BINARY`: ``add``, ``sub``, ``mul``, ``div``;
* :data:`AGGREGATE`: ``groupmean(a,b)``, the mean of ``a`` within the quantile bin of ``b`` that a row falls in
  (Deep Feature Synthesis's group-by aggregate, with ``b`` binned so that any numeric column can group).

Safety: no value that is not finite ever leaves this module. Every input column and every output column goes
through :func:`finite` (NaN -> 0, +-inf and anything beyond +-:data:`BOUND` -> +-:data:`BOUND`), and the operations
that are undefined somewhere have total versions, chosen so that they equal the textbook operation wherever that
one is well behaved:

* ``log(x) = sign(x) * log(1 + |x|)``: defined on negatives and zero, monotone, and ~log(x) for large positive x;
* ``sqrt(x) = sign(x) * sqrt(|x|)``: the signed root, monotone (sqrt(|x|) would fold negatives onto positives);
* ``reciprocal(x) = x / (x^2 + EPSILON^2)``: 1/x wherever ``|x| >> EPSILON``, 0 at 0, never beyond 1/(2 EPSILON);
* ``div(a,b) = a * reciprocal(b)``, with the same guard;
* ``sigmoid(x)``: the logistic function of the z-scored column (of the raw column it would be 0 or 1 for any
  feature whose scale is far from 1).

Stateful operations (``zscore``, ``minmax``, ``quantile``, ``bin``, ``sigmoid``, ``groupmean``) learn their
parameters on the *fit rows* only (the training rows) and apply them to every row, so a search over features never
looks at test rows. They are scikit-learn's transformers where one exists (StandardScaler, MinMaxScaler,
QuantileTransformer, KBinsDiscretizer).
"""

from __future__ import annotations

import re
import warnings
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.preprocessing import KBinsDiscretizer, MinMaxScaler, QuantileTransformer, StandardScaler

from trends.features.datasets import TabularData

UNARY: tuple[str, ...] = ("log", "sqrt", "square", "reciprocal", "zscore", "minmax", "quantile", "bin", "sigmoid")
BINARY: tuple[str, ...] = ("add", "sub", "mul", "div")
AGGREGATE: tuple[str, ...] = ("groupmean",)
OPERATIONS: tuple[str, ...] = UNARY + BINARY + AGGREGATE
COMMUTATIVE: frozenset[str] = frozenset({"add", "mul"})
STATEFUL: frozenset[str] = frozenset({"zscore", "minmax", "quantile", "bin", "sigmoid", "groupmean"})

BOUND = 1e9  # every feature value is clipped to +-BOUND (float64 handles far more; a model's solver does not)
EPSILON = 1e-6  # the reciprocal's guard: |1/x| never exceeds 1 / (2 EPSILON) = 5e5
N_BINS = 8  # quantile bins of ``bin`` and of the grouping column of ``groupmean``
N_QUANTILES = 100  # of QuantileTransformer (at most the number of fit rows)
MAX_COLUMNS = 20_000  # derived columns a FeatureBuilder remembers
ROWS = ("train", "test")

# scikit-learn 1.7 added KBinsDiscretizer's quantile_method and warns until it is given; older versions lack it
_QUANTILE_METHOD = {"quantile_method": "linear"} if "quantile_method" in KBinsDiscretizer().get_params() else {}
_TOKEN = re.compile(r"\s*(?:([A-Za-z_][A-Za-z0-9_]*)|(\()|(\))|(,))")


@dataclass(frozen=True)
class Node:
    """A parsed expression: a raw feature (``op`` None, ``name`` its name) or an operation on ``args``."""

    op: str | None
    args: tuple[Node, ...] = ()
    name: str = ""

    def __str__(self) -> str:
        if self.op is None:
            return self.name
        return f"{self.op}({','.join(str(a) for a in self.args)})"

    @property
    def depth(self) -> int:
        """0 for a raw feature, 1 + the deepest operand's depth for a derived one."""
        return 0 if self.op is None else 1 + max(a.depth for a in self.args)

    def raw_names(self) -> set[str]:
        """The raw features the expression is built from."""
        if self.op is None:
            return {self.name}
        return set().union(*(a.raw_names() for a in self.args))


def arity(op: str) -> int:
    """1 for a unary operation, 2 for a binary or aggregate one."""
    if op in UNARY:
        return 1
    if op in BINARY or op in AGGREGATE:
        return 2
    raise ValueError(f"unknown operation {op!r}; choose one of {', '.join(OPERATIONS)}")


def parse(expression: str) -> Node:
    """The tree of ``expression``, with commutative operands in canonical order. A malformed expression (unbalanced
    parentheses, an unknown operation, a wrong number of operands, stray characters) raises a one-line ValueError."""
    if not isinstance(expression, str):
        raise ValueError(f"a feature expression is a string, got {expression!r}")
    tokens = _tokenize(expression)
    node, position = _parse_node(tokens, 0, expression)
    if position != len(tokens):
        raise ValueError(f"malformed feature expression {expression!r}: unexpected {tokens[position]!r}")
    return node


def _tokenize(expression: str) -> list[str]:
    tokens, position = [], 0
    stripped = expression.rstrip()
    while position < len(stripped):
        match = _TOKEN.match(stripped, position)
        if match is None:
            raise ValueError(
                f"malformed feature expression {expression!r}: unexpected character {stripped[position]!r}"
            )
        tokens.append(match.group().strip())
        position = match.end()
    if not tokens:
        raise ValueError("empty feature expression")
    return tokens


def _parse_node(tokens: list[str], i: int, expression: str) -> tuple[Node, int]:
    if i >= len(tokens):
        raise ValueError(f"malformed feature expression {expression!r}: it ends too early")
    word = tokens[i]
    if not (word[0].isalpha() or word[0] == "_"):
        raise ValueError(f"malformed feature expression {expression!r}: expected a name, got {word!r}")
    if i + 1 >= len(tokens) or tokens[i + 1] != "(":
        return Node(None, name=word), i + 1
    if word not in OPERATIONS:
        raise ValueError(
            f"malformed feature expression {expression!r}: unknown operation {word!r} "
            f"(operations: {', '.join(OPERATIONS)})"
        )
    args, i = [], i + 2
    while True:
        arg, i = _parse_node(tokens, i, expression)
        args.append(arg)
        if i < len(tokens) and tokens[i] == ",":
            i += 1
            continue
        if i < len(tokens) and tokens[i] == ")":
            i += 1
            break
        raise ValueError(f"malformed feature expression {expression!r}: expected ',' or ')' in {word}(...)")
    if len(args) != arity(word):
        raise ValueError(
            f"malformed feature expression {expression!r}: {word} takes {arity(word)} operand(s), got {len(args)}"
        )
    if word in COMMUTATIVE:
        args.sort(key=str)
    return Node(word, tuple(args)), i


def canonical(expression: str) -> str:
    """The canonical spelling of ``expression`` (see the module docstring)."""
    return str(parse(expression))


def compose(op: str, *operands: str) -> str:
    """The canonical expression of ``op`` applied to ``operands`` (themselves expressions)."""
    if len(operands) != arity(op):
        raise ValueError(f"{op} takes {arity(op)} operand(s), got {len(operands)}")
    return canonical(f"{op}({','.join(operands)})")


def depth(expression: str) -> int:
    """How many operations deep ``expression`` is (0 for a raw feature)."""
    return parse(expression).depth


# ---- safe evaluation -----------------------------------------------------------------------------------------


def finite(column: np.ndarray) -> np.ndarray:
    """``column`` as float64 with NaN replaced by 0 and everything else clipped to +-:data:`BOUND`: the one guard
    every feature value passes before a model may see it."""
    out = np.nan_to_num(np.asarray(column, dtype=np.float64), nan=0.0, posinf=BOUND, neginf=-BOUND)
    out = np.clip(out, -BOUND, BOUND)
    if not np.isfinite(out).all():  # cannot happen after the two lines above; kept as the module's promise
        raise AssertionError("a feature column is not finite after the guard")
    return out


def _reciprocal(x: np.ndarray) -> np.ndarray:
    return x / (x * x + EPSILON * EPSILON)


def _fitted(transformer, x: np.ndarray, n_fit: int) -> np.ndarray:
    with warnings.catch_warnings():  # constant columns: "bins whose width are too small", "n_quantiles > n"
        warnings.simplefilter("ignore")
        transformer.fit(x[:n_fit, None])
        return transformer.transform(x[:, None])[:, 0]


def _zscore(x: np.ndarray, n_fit: int) -> np.ndarray:
    return _fitted(StandardScaler(), x, n_fit)


def _quantile(x: np.ndarray, n_fit: int) -> np.ndarray:
    return _fitted(QuantileTransformer(n_quantiles=min(N_QUANTILES, n_fit), subsample=None), x, n_fit)


def _bin(x: np.ndarray, n_fit: int) -> np.ndarray:
    """The index of the quantile bin a value falls in (bins learned on the fit rows; fewer when values repeat)."""
    if np.ptp(x[:n_fit]) == 0.0:  # KBinsDiscretizer rejects a constant column; it has one bin
        return np.zeros_like(x)
    binner = KBinsDiscretizer(n_bins=N_BINS, encode="ordinal", strategy="quantile", **_QUANTILE_METHOD)
    return _fitted(binner, x, n_fit)


def _sigmoid(x: np.ndarray, n_fit: int) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * _zscore(x, n_fit)))  # the logistic function, without exp overflow


def _groupmean(a: np.ndarray, b: np.ndarray, n_fit: int) -> np.ndarray:
    """The mean of ``a`` over the fit rows in the same bin of ``b``; a bin no fit row falls in gets a's mean."""
    groups = _bin(b, n_fit).astype(np.int64)
    sums = np.bincount(groups[:n_fit], weights=a[:n_fit], minlength=N_BINS)
    counts = np.bincount(groups[:n_fit], minlength=N_BINS)
    means = np.where(counts > 0, sums / np.maximum(counts, 1), a[:n_fit].mean())
    return means[groups]


UNARY_FUNCTIONS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "log": lambda x, n: np.sign(x) * np.log1p(np.abs(x)),
    "sqrt": lambda x, n: np.sign(x) * np.sqrt(np.abs(x)),
    "square": lambda x, n: x * x,
    "reciprocal": lambda x, n: _reciprocal(x),
    "zscore": _zscore,
    "minmax": lambda x, n: _fitted(MinMaxScaler(), x, n),
    "quantile": _quantile,
    "bin": _bin,
    "sigmoid": _sigmoid,
}
BINARY_FUNCTIONS: dict[str, Callable[[np.ndarray, np.ndarray, int], np.ndarray]] = {
    "add": lambda a, b, n: a + b,
    "sub": lambda a, b, n: a - b,
    "mul": lambda a, b, n: a * b,
    "div": lambda a, b, n: a * _reciprocal(b),
    "groupmean": _groupmean,
}


def apply_operation(op: str, operands: Sequence[np.ndarray], n_fit: int) -> np.ndarray:
    """``op`` on the guarded ``operands`` (columns over all rows, the first ``n_fit`` of them the fit rows), guarded
    in turn."""
    if n_fit < 1:
        raise ValueError(f"a transformation needs at least one fit row, got n_fit={n_fit}")
    columns = [finite(c) for c in operands]
    if len(columns) != arity(op):
        raise ValueError(f"{op} takes {arity(op)} operand(s), got {len(columns)}")
    with np.errstate(all="ignore"):  # overflow to inf is expected (square of 1e9); the guard handles it
        if op in UNARY_FUNCTIONS:
            return finite(UNARY_FUNCTIONS[op](columns[0], n_fit))
        return finite(BINARY_FUNCTIONS[op](columns[0], columns[1], n_fit))


class FeatureBuilder:
    """Evaluates expressions over a table whose first ``n_fit`` rows are the fit rows, remembering every column it
    has computed (sub-expressions included), so a search that grows feature sets one step at a time computes each
    feature once.

    :param columns: the raw features by name, each a column over all rows (fit rows first)
    :param n_fit: how many of the rows are fit rows (stateful transformations learn on them only)
    :param max_columns: derived columns remembered; beyond it the memory is cleared (a long search meets
        hundreds of thousands of features: at ~6 kB a column, the default holds about 130 MB)
    """

    def __init__(self, columns: Mapping[str, np.ndarray], n_fit: int, max_columns: int = MAX_COLUMNS) -> None:
        lengths = {len(c) for c in columns.values()}
        if len(lengths) != 1:
            raise ValueError(f"raw columns must all have the same length, got lengths {sorted(lengths)}")
        if not 1 <= n_fit <= lengths.pop():
            raise ValueError(f"n_fit must be between 1 and the number of rows, got {n_fit}")
        self.n_fit = n_fit
        self.max_columns = max_columns
        self.raw = tuple(columns)
        self._cache: dict[str, np.ndarray] = {name: finite(c) for name, c in columns.items()}
        for column in self._cache.values():
            column.flags.writeable = False

    def column(self, expression: str | Node) -> np.ndarray:
        """The feature over all rows (read-only)."""
        node = parse(expression) if isinstance(expression, str) else expression
        key = str(node)
        found = self._cache.get(key)
        if found is not None:
            return found
        if node.op is None:
            raise ValueError(f"unknown raw feature {node.name!r}; the raw features are {', '.join(self.raw)}")
        result = apply_operation(node.op, [self.column(a) for a in node.args], self.n_fit)
        result.flags.writeable = False
        if len(self._cache) >= self.max_columns + len(self.raw):
            self.clear()
        self._cache[key] = result
        return result

    def matrix(self, expressions: Sequence[str]) -> np.ndarray:
        """The features as the columns of an ``(rows, len(expressions))`` float64 matrix, every value finite."""
        n = len(next(iter(self._cache.values())))
        if not expressions:
            return np.zeros((n, 0))
        return np.column_stack([self.column(e) for e in expressions])

    def clear(self) -> None:
        """Forget the derived columns (keeps the raw ones)."""
        self._cache = {name: self._cache[name] for name in self.raw}


def materialize(
    expressions: Sequence[str], fit: np.ndarray, names: Sequence[str], apply: np.ndarray | None = None
) -> np.ndarray:
    """The features ``expressions`` of the rows ``apply`` (of ``fit`` itself when None), every stateful
    transformation fitted on the rows of ``fit``. ``fit`` and ``apply`` are ``(rows, len(names))`` raw tables."""
    fit = np.asarray(fit, dtype=np.float64)
    if fit.ndim != 2 or fit.shape[1] != len(names):
        raise ValueError(f"fit must be a (rows, {len(names)}) table, got shape {fit.shape}")
    rows = fit if apply is None else np.vstack([fit, np.asarray(apply, dtype=np.float64)])
    builder = FeatureBuilder({name: rows[:, i] for i, name in enumerate(names)}, n_fit=len(fit))
    matrix = builder.matrix(expressions)
    return matrix if apply is None else matrix[len(fit) :]


_BUILDERS: weakref.WeakKeyDictionary[TabularData, FeatureBuilder] = weakref.WeakKeyDictionary()


def builder_of(data: TabularData) -> FeatureBuilder:
    """The :class:`FeatureBuilder` of a dataset, shared by every caller in the process: its rows are the train rows
    (the fit rows) then the test rows."""
    builder = _BUILDERS.get(data)
    if builder is None:
        rows = np.vstack([data.X_train, data.X_test])
        columns = {name: rows[:, i] for i, name in enumerate(data.feature_names)}
        builder = _BUILDERS[data] = FeatureBuilder(columns, n_fit=len(data.X_train))
    return builder


def build_matrix(expressions: Sequence[str], data: TabularData, rows: str = "train") -> np.ndarray:
    """The features ``expressions`` of the dataset's train or test rows (``rows``), as an ``(rows, features)``
    float64 matrix whose every value is finite; stateful transformations are always fitted on the train rows."""
    if rows not in ROWS:
        raise ValueError(f"rows must be 'train' or 'test', got {rows!r}")
    builder = builder_of(data)
    matrix = builder.matrix(expressions)
    return matrix[: builder.n_fit] if rows == "train" else matrix[builder.n_fit :]
