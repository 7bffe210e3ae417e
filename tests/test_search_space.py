"""Search spaces: masks forbid exactly the invalid choices, enumeration yields every distinct buildable
configuration once, canonical keys merge what builds the same network, and sampling (numpy and Optuna) stays
inside the space."""

import json

import numpy as np
import optuna
import pytest
import torch

from trends.automl.space import (
    ARCH_RECIPE,
    HPARAM_RECIPE,
    SPACES,
    Categorical,
    SearchSpace,
    get_space,
)
from trends.models import LayerSpec, NetworkSpec, build_network
from trends.training import TrainRecipe

SAMPLE_SHAPES = {"mnist1d": (1, 40), "digits": (1, 8, 8)}
EXPECTED_SIZES = {"mnist1d-arch": 542, "mnist1d-hparams": 6025, "digits-hparams": 3625}


def tiny_space() -> SearchSpace:
    """Three decisions with one condition and one option filter: small enough to check every path by hand."""
    decisions = (
        Categorical("kind", ("a", "b")),
        Categorical("size", (1, 2, 3), allows=lambda c, o: not (c["kind"] == "b" and o == 3)),
        Categorical("extra", (False, True), applies=lambda c: c["kind"] == "a"),
    )
    return SearchSpace("tiny", "digits", decisions, lambda c: (NetworkSpec(), TrainRecipe()))


@pytest.fixture(scope="module", params=sorted(SPACES))
def space(request) -> SearchSpace:
    return SPACES[request.param]


def random_paths(space: SearchSpace, n: int, seed: int = 0):
    """Partial configurations met on ``n`` random walks through the space, each with its mask."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        partial: dict = {}
        while not space.is_complete(partial):
            mask = space.valid_options(partial)
            yield partial, mask
            partial = space.choose(partial, int(rng.choice(np.flatnonzero(mask))))


def completable(space: SearchSpace, partial: dict) -> bool:
    """Whether some completion of ``partial`` is a valid configuration, found by exhaustive search that never
    looks at a mask (so it checks the masks independently)."""
    if not space.is_valid_prefix(partial):
        return False
    i = space.next_decision(partial)
    if i is None:
        return space.is_valid(partial)
    return any(completable(space, {**partial, space.decisions[i].name: o}) for o in space.decisions[i].options)


def test_tiny_space_enumerates_exactly_its_configurations():
    space = tiny_space()
    keys = {space.key(c) for c in space.enumerate()}
    expected = [{"kind": "a", "size": s, "extra": e} for s in (1, 2, 3) for e in (False, True)]
    expected += [{"kind": "b", "size": s} for s in (1, 2)]
    assert keys == {space.key(c) for c in expected}
    assert space.size == 8


def test_tiny_space_masks_every_path():
    space = tiny_space()
    assert space.valid_options({}).tolist() == [True, True]
    assert space.valid_options({"kind": "b"}).tolist() == [True, True, False]
    assert space.valid_options({"kind": "a", "size": 3}).tolist() == [True, True]
    assert space.is_complete({"kind": "b", "size": 2})
    assert not space.is_complete({"kind": "a", "size": 2})


def test_masks_forbid_exactly_the_invalid_choices(space):
    for partial, mask in random_paths(space, 40):
        decision = space.decisions[space.next_decision(partial)]
        for option, allowed in zip(decision.options, mask, strict=True):
            assert completable(space, {**partial, decision.name: option}) == allowed, (partial, option)


def test_enumerate_yields_size_distinct_valid_buildable_configs(space):
    configs = list(space.enumerate())
    assert len(configs) == space.size == EXPECTED_SIZES[space.name]
    assert len({space.key(c) for c in configs}) == len(configs)
    shape = SAMPLE_SHAPES[space.dataset]
    specs = set()
    for config in configs:
        assert space.canonical(config) == config
        network, recipe = space.build(config)
        specs.add((network, recipe))
        build_network(network, shape, 10)  # raises on a shape mismatch
    assert len(specs) == len(configs)  # distinct keys are distinct trainings


@pytest.mark.parametrize("name", sorted(SPACES))
def test_a_built_network_classifies_the_dataset_samples(name):
    space = get_space(name)
    network, _ = space.build(list(space.enumerate())[-1])  # the deepest, widest end of the grid
    model = build_network(network, SAMPLE_SHAPES[space.dataset], 10)
    assert model(torch.zeros(2, *SAMPLE_SHAPES[space.dataset])).shape == (2, 10)


def test_arch_space_holds_mlps_and_cnns():
    space = get_space("mnist1d-arch")
    kinds = [{layer.kind for layer in space.build(c)[0].layers} for c in space.enumerate()]
    assert kinds.count({"dense"}) == 42
    assert kinds.count({"conv"}) + kinds.count({"conv", "dense"}) == 500


def test_canonical_merges_inapplicable_choices():
    space = get_space("mnist1d-arch")
    mlp = {"layer1_type": "dense", "layer1_width": 32, "layer2_type": "stop"}
    noisy = {**mlp, "layer1_kernel": 5, "layer2_width": 64, "layer3_skip": True}
    assert space.canonical(noisy) == mlp
    assert space.key(noisy) == space.key(mlp)
    assert list(space.canonical(dict(reversed(noisy.items())))) == list(mlp)  # decision order, whatever came in
    assert json.loads(space.key(mlp)) == mlp

    hparams = get_space("mnist1d-hparams")
    linear = {"learning_rate": 1e-3, "batch_size": 64, "hidden_layers": 0}
    assert hparams.key({**linear, "units": 128, "dropout": 0.3, "kernel": 9}) == hparams.key(linear)


def test_canonical_normalises_values_to_the_options():
    space = get_space("mnist1d-hparams")
    config = {"learning_rate": 0.001, "batch_size": np.int64(64), "hidden_layers": 1.0, "layer_type": "dense"}
    config |= {"units": 32, "dropout": 0}
    canonical = space.canonical(config)
    assert canonical["batch_size"] == 64 and type(canonical["batch_size"]) is int
    assert type(canonical["hidden_layers"]) is int and type(canonical["dropout"]) is float


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        ({"layer1_type": "dense"}, "no choice for 'layer1_width'"),
        ({"layer1_type": "mlp"}, "not an option of 'layer1_type'"),
        ({"layer1_type": "dense", "layer1_width": 32, "layer2_type": "conv"}, "not allowed"),
        ({"layer1_type": "dense", "layer1_width": 32, "layer2_type": "stop", "depth": 2}, "unknown decision"),
        (
            {"layer1_type": "conv", "layer1_width": 32, "layer1_kernel": 3, "layer2_type": "dense"}
            | {"layer2_width": 16, "layer2_skip": 1, "layer3_type": "stop"},
            "not an option of 'layer2_skip'",  # 1 is not True: a typo should not pass for a boolean
        ),
    ],
)
def test_invalid_configurations_raise_one_line_reasons(config, reason):
    with pytest.raises(ValueError, match=reason) as info:
        get_space("mnist1d-arch").canonical(config)
    assert "\n" not in str(info.value)


def test_partial_configurations_are_checked():
    space = get_space("mnist1d-arch")
    with pytest.raises(ValueError, match="made before 'layer1_width'"):
        space.valid_options({"layer1_type": "dense", "layer2_type": "stop"})
    complete = {"layer1_type": "dense", "layer1_width": 32, "layer2_type": "stop"}
    with pytest.raises(ValueError, match="complete"):
        space.valid_options(complete)
    with pytest.raises(ValueError, match="not allowed"):
        space.choose({"layer1_type": "dense", "layer1_width": 32}, 0)  # conv after dense


def test_sample_is_deterministic_and_valid(space):
    first = [space.sample(np.random.default_rng(7)) for _ in range(3)]
    assert first[0] == first[1] == first[2]
    rng = np.random.default_rng(0)
    samples = [space.sample(rng) for _ in range(200)]
    assert all(space.canonical(s) == s for s in samples)
    assert len({space.key(s) for s in samples}) > 20


def test_suggest_searches_the_same_space_with_optuna(space):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    configs = []

    def objective(trial: optuna.Trial) -> float:
        configs.append(space.suggest(trial))
        return float(len(configs))

    study.optimize(objective, n_trials=30)
    assert all(space.canonical(c) == c for c in configs)
    assert [space.from_params(t.params) for t in study.trials] == configs
    assert len({space.key(c) for c in configs}) > 10


def test_suggest_is_reproducible_under_a_seeded_sampler():
    space = get_space("mnist1d-arch")

    def run() -> list[dict]:
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=11))
        out: list[dict] = []
        study.optimize(lambda t: out.append(space.suggest(t)) or 0.0, n_trials=10)
        return out

    assert run() == run()


def test_get_space_lists_the_names():
    assert get_space("mnist1d-arch").dataset == "mnist1d"
    assert get_space("digits-hparams").dataset == "digits"
    with pytest.raises(ValueError, match="mnist1d-arch, mnist1d-hparams, digits-hparams"):
        get_space("cifar-arch")


def test_build_gives_the_documented_recipes():
    arch = get_space("mnist1d-arch")
    config = {"layer1_type": "conv", "layer1_width": 32, "layer1_kernel": 5, "layer2_type": "dense"}
    config |= {"layer2_width": 16, "layer2_skip": True, "layer3_type": "stop"}
    network, recipe = arch.build(config)
    assert recipe == ARCH_RECIPE == TrainRecipe(3e-3, 64, max_epochs=20, patience=4, optimizer="adam", seed=0)
    assert network.describe() == "conv32k5-dense16+skip"

    hparams = get_space("digits-hparams")
    config = {"learning_rate": 3e-4, "batch_size": 32, "hidden_layers": 2, "layer_type": "conv", "units": 16}
    config |= {"kernel": 5, "dropout": 0.2}
    network, recipe = hparams.build(config)
    assert network.describe() == "conv16k5-d0.2-conv16k5-d0.2"
    assert (recipe.learning_rate, recipe.batch_size) == (3e-4, 32)
    assert (
        (recipe.max_epochs, recipe.patience, recipe.optimizer)
        == (30, 5, "adam")
        == (
            HPARAM_RECIPE.max_epochs,
            HPARAM_RECIPE.patience,
            HPARAM_RECIPE.optimizer,
        )
    )


def test_decisions_reject_bad_grids():
    with pytest.raises(ValueError, match="repeats"):
        Categorical("x", (1, 1))
    with pytest.raises(ValueError, match="JSON scalars"):
        Categorical("x", ((1, 2),))
    with pytest.raises(ValueError, match="no options"):
        Categorical("x", ())
    assert len(Categorical("x", (1, True)).options) == 2  # True is not 1 here


def test_arch_masks_forbid_only_what_a_network_spec_rejects():
    """The arch space's one option filter is the model family's own rule: no convolution after a dense layer."""
    space = get_space("mnist1d-arch")
    for partial, mask in random_paths(space, 60, seed=1):
        decision = space.decisions[space.next_decision(partial)]
        for option, allowed in zip(decision.options, mask, strict=True):
            if allowed:
                continue
            kinds = [v for n, v in partial.items() if n.endswith("_type")]
            assert (option, kinds[-1]) == ("conv", "dense")
            with pytest.raises(ValueError, match="conv layers must come before dense"):
                NetworkSpec(tuple(LayerSpec(k, 16) for k in [*kinds, option]))


def test_sample_uniform_draws_every_configuration_alike_and_sample_does_not():
    space = get_space("mnist1d-arch")
    rng = np.random.default_rng(0)
    mlp_share = 42 / space.size
    uniform = [space.sample_uniform(rng)["layer1_type"] == "dense" for _ in range(4000)]
    per_decision = [space.sample(rng)["layer1_type"] == "dense" for _ in range(4000)]
    assert abs(np.mean(uniform) - mlp_share) < 0.015
    assert np.mean(per_decision) > 0.4  # half the first layers are dense: the per-decision draw favours MLPs
