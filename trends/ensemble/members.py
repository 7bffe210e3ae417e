"""The members ensembles are made from: a declarative list of diverse classifiers per dataset, each trained once on
the train split, its validation and test probabilities cached, then served as a :class:`MemberPool`.

Diversity is what an ensemble feeds on, so the list mixes families that err differently (linear, trees, boosting,
kernels, neighbours, naive Bayes, MLPs and CNNs from :mod:`trends.models`), the same architecture under different
seeds (the cheapest diversity there is), and some deliberately weak members (a shallow tree, a shallow forest,
naive Bayes, a narrow CNN without residuals): an ensemble selector that only ever sees good members has nothing
to decide. Choices made for the time budget (the whole pool of a dataset builds in well under three minutes on
one core):

- gradient boosting is ``HistGradientBoostingClassifier``: on MNIST-1D's 3200 training signals it fit in 2.6 s at
  0.70 validation accuracy, where ``GradientBoostingClassifier`` took 23.7 s for 0.65 (it grows one exact tree
  per class per round; the histogram version bins the 40 features once);
- the SVM is ``CalibratedClassifierCV(SVC(), ensemble=False)``, which is exactly what ``SVC(probability=True)``
  computes (Platt scaling on 5-fold cross-validated decision values, then the SVC refit on all the data) and what
  scikit-learn 1.9, which deprecates ``probability=True``, says to use instead; 1.2-1.6 s on MNIST-1D.

Each member is cached in its own file (``<cache>/<dataset>/<member>.npz``, written atomically), so an interrupted
build keeps every member already done, and the file holds the member's definition: a changed definition is
trained again rather than served stale, as in :mod:`trends.compression.zoo`.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import ExtraTreesClassifier, HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier
from threadpoolctl import threadpool_limits

from trends.data import DATASETS, Dataset, load_dataset
from trends.ensemble.pool import MemberPool
from trends.files import atomic_write
from trends.models import LayerSpec, NetworkSpec
from trends.training import EVAL_BATCH_SIZE, TORCH_THREADS, TrainRecipe, train_network

DEFAULT_CACHE = Path("runs") / "ensemble" / "pools"  # relative to the working directory, like every run
CACHE_FORMAT = 1  # part of every member's identity: bump it when what a cache file holds changes

# scikit-learn's OpenMP and BLAS threads, held to one like torch's (trends.training.TORCH_THREADS): on this two-core
# machine under load, the default thread pools made digits' logistic regression 0.02 s -> 5.2 s and its histogram
# gradient boosting 1.7 s -> 29.7 s. (threadpoolctl is scikit-learn's own dependency for this.)
SKLEARN_THREADS = 1

Progress = Callable[[str, int, int], None]  # (member name, its position from 1, members to train), before training


@dataclass(frozen=True)
class SklearnMember:
    """A scikit-learn classifier, fit on the flattened training samples. ``estimator`` is an unfitted template,
    cloned for every fit, with its random state fixed so that a rebuild gives the same probabilities."""

    name: str
    description: str
    estimator: BaseEstimator

    def identity(self) -> dict[str, str]:
        # From get_params rather than repr(estimator): scikit-learn's repr elides long parameter lists, and then a
        # changed parameter would not change the identity.
        params = self.estimator.get_params(deep=True)
        return {k: type(v).__name__ if hasattr(v, "get_params") else repr(v) for k, v in sorted(params.items())}

    def fit_predict(self, dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
        with threadpool_limits(limits=SKLEARN_THREADS):
            model = clone(self.estimator).fit(_flat(dataset.x_train), dataset.y_train)
            return tuple(_all_classes(model, _flat(x), dataset.n_classes) for x in (dataset.x_val, dataset.x_test))


@dataclass(frozen=True)
class NetworkMember:
    """A network of :mod:`trends.models`, trained by :func:`trends.training.train_network` (early stopping on the
    validation loss, which is the one use it makes of the validation split)."""

    name: str
    description: str
    spec: NetworkSpec
    recipe: TrainRecipe

    def identity(self) -> dict[str, str]:
        return {"spec": repr(self.spec), "recipe": repr(self.recipe)}

    def fit_predict(self, dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
        model = train_network(self.spec, dataset, self.recipe).model
        model.eval()
        return tuple(_softmax(model, x) for x in (dataset.x_val, dataset.x_test))


Member = SklearnMember | NetworkMember


def _flat(x: np.ndarray) -> np.ndarray:
    return x.reshape(len(x), -1)


def _normalised(proba: np.ndarray) -> np.ndarray:
    """Rows summing to 1 in float32 (a float64 row that sums to 1 need not after the cast, so renormalise after)."""
    proba = np.clip(np.asarray(proba, dtype=np.float64), 0.0, None).astype(np.float32)
    return proba / proba.sum(axis=1, keepdims=True)


def _all_classes(model: BaseEstimator, x: np.ndarray, n_classes: int) -> np.ndarray:
    proba = np.zeros((len(x), n_classes))
    proba[:, model.classes_] = model.predict_proba(x)  # a class missing from training keeps probability 0
    return _normalised(proba)


@torch.no_grad()
def _softmax(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    torch.set_num_threads(TORCH_THREADS)
    batches = [model(torch.tensor(x[i : i + EVAL_BATCH_SIZE])) for i in range(0, len(x), EVAL_BATCH_SIZE)]
    return _normalised(torch.softmax(torch.cat(batches).double(), dim=1).numpy())


def _network(*layers: LayerSpec) -> NetworkSpec:
    return NetworkSpec(tuple(layers))


_DENSE, _CONV = "dense", "conv"
_RESIDUAL_CNN = _network(
    LayerSpec(_CONV, 32, kernel=5),
    LayerSpec(_CONV, 32, skip=True),
    LayerSpec(_CONV, 64, skip=True),
    LayerSpec(_DENSE, 64),
)

# One list serves both datasets: the networks adapt to the sample shape (2-D convolutions on digits' 8x8 images,
# 1-D on MNIST-1D's 40-step signals), and the same members being weak or strong on different datasets (the
# logistic regression is among the best members on digits, 0.97 validation accuracy, and among the worst on
# MNIST-1D, 0.32, whose classes are shifted and scaled templates) is itself instructive.
_COMMON: tuple[Member, ...] = (
    SklearnMember(
        "logistic-regression",
        "multinomial logistic regression on standardised inputs",
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
    ),
    SklearnMember("random-forest", "200 fully grown trees", RandomForestClassifier(200, n_jobs=1, random_state=0)),
    SklearnMember(
        "random-forest-shallow",
        "100 trees of depth 4 (weak on purpose)",
        RandomForestClassifier(100, max_depth=4, n_jobs=1, random_state=0),
    ),
    SklearnMember("extra-trees", "200 extremely randomised trees", ExtraTreesClassifier(200, n_jobs=1, random_state=0)),
    SklearnMember(
        "gradient-boosting",
        "histogram gradient boosting, 100 rounds",
        HistGradientBoostingClassifier(max_iter=100, early_stopping=False, random_state=0),
    ),
    SklearnMember(
        "svm-rbf",
        "RBF-kernel SVM (C=10), Platt-calibrated by 5-fold cross-validation",
        CalibratedClassifierCV(SVC(C=10.0), method="sigmoid", ensemble=False, cv=5),
    ),
    SklearnMember(
        "knn-5",
        "5 nearest neighbours, distance-weighted, standardised inputs",
        make_pipeline(StandardScaler(), KNeighborsClassifier(5, weights="distance")),
    ),
    SklearnMember("naive-bayes", "Gaussian naive Bayes (weak on purpose)", GaussianNB()),
    SklearnMember(
        "decision-tree",
        "one tree of depth 6 (weak on purpose)",
        DecisionTreeClassifier(max_depth=6, random_state=0),
    ),
    NetworkMember("linear", "softmax regression trained by Adam", _network(), TrainRecipe(learning_rate=1e-2)),
    NetworkMember("mlp-16", "one hidden layer of 16", _network(LayerSpec(_DENSE, 16)), TrainRecipe(learning_rate=3e-3)),
    *(
        NetworkMember(
            f"mlp-64-seed{seed}",
            f"one hidden layer of 64, seed {seed}",
            _network(LayerSpec(_DENSE, 64)),
            TrainRecipe(learning_rate=3e-3, seed=seed),
        )
        for seed in (0, 1)
    ),
    NetworkMember(
        "mlp-256-128-tanh",
        "two tanh layers of 256 and 128 with dropout 0.2",
        _network(LayerSpec(_DENSE, 256, activation="tanh"), LayerSpec(_DENSE, 128, activation="tanh", dropout=0.2)),
        TrainRecipe(learning_rate=1e-3),
    ),
    NetworkMember(
        "cnn-16-plain",
        "two 16-channel convolutions, no residuals, then global pooling (weak on purpose)",
        _network(LayerSpec(_CONV, 16), LayerSpec(_CONV, 16)),
        TrainRecipe(learning_rate=3e-3, max_epochs=30),
    ),
    *(
        NetworkMember(
            f"cnn-residual-seed{seed}",
            f"conv32k5, two residual convolutions (32, 64), dense 64; seed {seed}",
            _RESIDUAL_CNN,
            TrainRecipe(learning_rate=3e-3, max_epochs=40, seed=seed),
        )
        for seed in (0, 1)
    ),
    NetworkMember(
        "cnn-wide-gelu",
        "conv64k7, residual conv64k5 (GELU), dense 128 with dropout 0.3",
        _network(
            LayerSpec(_CONV, 64, kernel=7, activation="gelu"),
            LayerSpec(_CONV, 64, kernel=5, activation="gelu", skip=True),
            LayerSpec(_DENSE, 128, dropout=0.3),
        ),
        TrainRecipe(learning_rate=2e-3, max_epochs=40, seed=3),
    ),
)

MEMBERS: dict[str, tuple[Member, ...]] = {name: _COMMON for name in DATASETS}


def describe_members(dataset: str) -> dict[str, str]:
    """The names of ``dataset``'s members, in pool order, with a one-line description of each."""
    return {member.name: member.description for member in _members_of(dataset)}


def _members_of(dataset: str) -> tuple[Member, ...]:
    if dataset not in MEMBERS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(MEMBERS)}")
    return MEMBERS[dataset]


@dataclass(frozen=True)
class MemberRecord:
    """One trained member as cached: its probabilities and how long it took to train (when it was trained)."""

    name: str
    val_proba: np.ndarray  # (n_val, classes), float32
    test_proba: np.ndarray  # (n_test, classes), float32
    seconds: float  # wall-clock time of fit and prediction when it was built


def build_members(
    dataset: str,
    cache_dir: Path = DEFAULT_CACHE,
    members: Sequence[Member] | None = None,
    progress: Progress | None = None,
) -> list[MemberRecord]:
    """Every member of ``dataset`` (or the given ``members``), from the cache when there, else trained now and
    cached before the next one starts. ``progress`` is called before each member that has to be trained."""
    chosen = tuple(_members_of(dataset) if members is None else members)
    names = [member.name for member in chosen]
    if len(set(names)) != len(names):
        raise ValueError(f"member names must be unique, got {names}")
    data = load_dataset(dataset)
    folder = Path(cache_dir) / dataset
    cached = {m.name: _read(folder / f"{m.name}.npz", _identity(dataset, m)) for m in chosen}
    missing = [m for m in chosen if cached[m.name] is None]
    for position, member in enumerate(missing, start=1):
        if progress is not None:
            progress(member.name, position, len(missing))
        cached[member.name] = _train(member, data, folder / f"{member.name}.npz", _identity(dataset, member))
    return [cached[name] for name in names]


def load_pool(
    dataset: str,
    cache_dir: Path = DEFAULT_CACHE,
    progress: Progress | None = None,
    members: Sequence[Member] | None = None,
) -> MemberPool:
    """``dataset``'s pool of members (or of the given ``members``), training and caching those not cached yet."""
    records = build_members(dataset, cache_dir, members, progress)
    data = load_dataset(dataset)
    return MemberPool(
        dataset=dataset,
        names=tuple(r.name for r in records),
        val_proba=np.stack([r.val_proba for r in records]),
        test_proba=np.stack([r.test_proba for r in records]),
        y_val=np.asarray(data.y_val, dtype=np.int64),
        y_test=np.asarray(data.y_test, dtype=np.int64),
    )


def _identity(dataset: str, member: Member) -> str:
    kind = type(member).__name__
    return json.dumps({"format": CACHE_FORMAT, "dataset": dataset, "kind": kind, **member.identity()}, sort_keys=True)


def _read(path: Path, identity: str) -> MemberRecord | None:
    """The cached record at ``path`` when it exists and was built from the same definition, else None."""
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as saved:
        if str(saved["identity"]) != identity:
            return None
        return MemberRecord(path.stem, saved["val_proba"], saved["test_proba"], float(saved["seconds"]))


def _train(member: Member, dataset: Dataset, path: Path, identity: str) -> MemberRecord:
    start = time.perf_counter()
    val_proba, test_proba = member.fit_predict(dataset)
    record = MemberRecord(member.name, val_proba, test_proba, time.perf_counter() - start)
    buffer = io.BytesIO()
    np.savez(buffer, identity=np.str_(identity), val_proba=val_proba, test_proba=test_proba, seconds=record.seconds)
    atomic_write(path, lambda f: f.write(buffer.getvalue()))
    return record
