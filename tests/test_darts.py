"""DARTS over mnist1d-arch: the decoded architecture is always valid, a one-hot alpha makes the super-network that
architecture, and a short search is deterministic and learns."""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from trends.automl.darts import DartsConfig, SuperNet, decode, search_darts
from trends.automl.space import ARCH_WIDTHS, get_space
from trends.models import build_network

SPACE = get_space("mnist1d-arch")
TINY = DartsConfig(epochs=2, batch_size=256, weight_lr=1e-2, arch_lr=1e-2, seed=1)  # ~2 s on one free core
ONE_HOT_LOGIT = -1e9  # the alpha of an unchosen option: its softmax weight is exactly 0 in float32

NARROW, WIDE = ARCH_WIDTHS[0], ARCH_WIDTHS[-1]

# architectures that exercise every path of the relaxation: MLP, CNN, conv -> dense, stop at slot 2 and 3,
# skips with identity (equal widths) and projection (different widths)
CASES = [
    {"layer1_type": "dense", "layer1_width": WIDE, "layer2_type": "stop"},
    {"layer1_type": "conv", "layer1_width": NARROW, "layer1_kernel": 5, "layer2_type": "stop"},
    {
        **{"layer1_type": "dense", "layer1_width": WIDE},
        **{"layer2_type": "dense", "layer2_width": WIDE, "layer2_skip": True},
        **{"layer3_type": "dense", "layer3_width": NARROW, "layer3_skip": True},
    },
    {
        **{"layer1_type": "conv", "layer1_width": NARROW, "layer1_kernel": 3},
        **{"layer2_type": "conv", "layer2_width": NARROW, "layer2_kernel": 5, "layer2_skip": True},
        **{"layer3_type": "conv", "layer3_width": WIDE, "layer3_kernel": 3, "layer3_skip": True},
    },
    {
        **{"layer1_type": "conv", "layer1_width": WIDE, "layer1_kernel": 5},
        **{"layer2_type": "dense", "layer2_width": NARROW, "layer2_skip": True},
        **{"layer3_type": "stop"},
    },
    {
        **{"layer1_type": "conv", "layer1_width": NARROW, "layer1_kernel": 3},
        **{"layer2_type": "conv", "layer2_width": WIDE, "layer2_kernel": 3, "layer2_skip": False},
        **{"layer3_type": "dense", "layer3_width": WIDE, "layer3_skip": True},
    },
]


def set_one_hot(net: SuperNet, config: dict) -> None:
    """Alphas choosing ``config``; decisions the config does not make keep their random alphas (they must not
    matter)."""
    with torch.no_grad():
        for decision in SPACE.decisions:
            if decision.name in config:
                alpha = net.alphas[decision.name]
                alpha.fill_(ONE_HOT_LOGIT)
                alpha[decision.index(config[decision.name])] = 0.0


def used_modules(net: SuperNet, config: dict) -> dict[str, tuple[torch.nn.Module, torch.nn.Module | None]]:
    """For each layer of ``config``, the super-network's layer and skip projection its discrete block uses, keyed by
    the block's name in build_network's Sequential (``conv1``, ``dense2``...), plus the head."""
    used, widths, counts = {}, [], {"conv": 0, "dense": 0}
    for k in range(1, 4):
        kind = config.get(f"layer{k}_type")
        if kind not in ("conv", "dense"):
            break
        width = config[f"layer{k}_width"]
        kernel = config.get(f"layer{k}_kernel", 1)
        branch = (net.convs if kind == "conv" else net.denses)[k - 1]
        projection = None
        if config.get(f"layer{k}_skip") and widths[-1] != width:
            projection = branch.projections[f"w{width}"]
        counts[kind] += 1
        used[f"{kind}{counts[kind]}"] = (branch.ops[f"w{width}k{kernel}"], projection)
        widths.append(width)
    used["head"] = (net.head, None)
    return used


def discrete_copy(net: SuperNet, config: dict) -> torch.nn.Sequential:
    """build_network's network for ``config``, with its weights cut out of the super-network's."""
    spec, _ = SPACE.build(config)
    model = build_network(spec, (1, 40), 10)
    with torch.no_grad():
        for name, (layer, projection) in used_modules(net, config).items():
            block = getattr(model, name)
            target = block if name == "head" else block.layer
            in_width = target.weight.shape[1]
            target.weight.copy_(layer.weight[:, :in_width])
            target.bias.copy_(layer.bias)
            if projection is not None:
                block.shortcut.weight.copy_(projection.weight[:, :in_width])
    return model


def fresh_net(seed: int = 0) -> SuperNet:
    torch.manual_seed(seed)
    return SuperNet(SPACE, 1, 40, 10)


def alphas_strategy():
    logits = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
    return st.fixed_dictionaries(
        {d.name: st.lists(logits, min_size=len(d.options), max_size=len(d.options)) for d in SPACE.decisions}
    )


@settings(max_examples=300, deadline=None)
@given(alphas=alphas_strategy())
def test_decoding_any_alphas_gives_a_valid_canonical_architecture(alphas):
    config = decode(SPACE, alphas)
    assert SPACE.is_valid(config)
    assert config == SPACE.canonical(config)
    kinds = [config[f"layer{k}_type"] for k in range(1, 4) if f"layer{k}_type" in config]
    if "dense" in kinds:
        assert "conv" not in kinds[kinds.index("dense") :]  # no conv after a dense layer, whatever alpha prefers
    if "stop" in kinds:
        assert kinds[-1] == "stop"  # nothing follows a stop


def test_decoding_prefers_the_best_allowed_option():
    alphas = {d.name: [0.0] * len(d.options) for d in SPACE.decisions}
    alphas["layer1_type"] = [0.0, 1.0]  # dense
    alphas["layer2_type"] = [5.0, 1.0, 2.0]  # conv is forbidden after dense: stop is the best allowed
    assert decode(SPACE, alphas) == {"layer1_type": "dense", "layer1_width": NARROW, "layer2_type": "stop"}


def test_one_hot_alphas_decode_to_their_architecture():
    net = fresh_net()
    for config in [*CASES, *(SPACE.sample(np.random.default_rng(i)) for i in range(50))]:
        set_one_hot(net, config)
        assert decode(SPACE, net.alphas) == config


@pytest.mark.parametrize("config", CASES, ids=lambda c: SPACE.build(c)[0].describe())
def test_one_hot_super_network_is_the_discrete_network(config):
    net = fresh_net()
    set_one_hot(net, config)
    x = torch.randn(8, 1, 40)
    model = discrete_copy(net, config)
    with torch.no_grad():
        expected = model(x)
        out = net(x)
        assert out.shape == (8, 10)
        torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("config", CASES, ids=lambda c: SPACE.build(c)[0].describe())
def test_with_one_hot_alphas_only_the_chosen_branch_matters(config):
    net = fresh_net()
    set_one_hot(net, config)
    x = torch.randn(8, 1, 40)
    used = {id(m) for pair in used_modules(net, config).values() for m in pair if m is not None}
    with torch.no_grad():
        before = net(x)
        for module in [*net.convs, *net.denses]:
            for op in [*module.ops.values(), *(module.projections.values() if module.projections else [])]:
                if id(op) not in used:
                    for parameter in op.parameters():
                        parameter.add_(torch.randn_like(parameter))
        assert torch.equal(net(x), before)
        chosen = next(iter(used_modules(net, config).values()))[0]
        chosen.bias.add_(1.0)
        assert not torch.allclose(net(x), before)


def test_soft_alphas_mix_every_branch():
    net = fresh_net()
    x = torch.randn(4, 1, 40)
    net(x).sum().backward()
    for name, alpha in net.alphas.items():
        assert alpha.grad is not None and alpha.grad.abs().sum() > 0, name


@pytest.fixture(scope="module")
def tiny_search():
    """One short search, run between two draws of the caller's random numbers, and what it logged."""
    logged = []
    torch.manual_seed(123)
    result = search_darts(config=TINY, log=lambda epoch, values: logged.append((epoch, values)))
    after = torch.rand(3)
    torch.manual_seed(123)
    return result, logged, torch.equal(after, torch.rand(3))


def test_a_short_search_lowers_the_alpha_split_loss(tiny_search):
    result, logged, _ = tiny_search
    assert result.epochs == TINY.epochs == len(result.history)
    assert result.history[-1][1] < result.history[0][1]
    assert SPACE.is_valid(result.config) and result.config == SPACE.canonical(result.config)
    assert list(result.alphas) == list(SPACE.names)
    for name, probabilities in result.alphas.items():
        assert len(probabilities) == len(SPACE.decisions[SPACE.names.index(name)].options)
        assert math.isclose(sum(probabilities), 1.0, rel_tol=1e-6)
    assert result.seconds > 0
    assert [epoch for epoch, _ in logged] == [1, 2]
    assert {"losses/train_loss", "losses/alpha_loss", "charts/alpha_accuracy"} <= set(logged[-1][1])


def test_a_search_is_deterministic_under_its_seed(tiny_search):
    first, _, _ = tiny_search
    again = search_darts(config=TINY)
    assert (again.config, again.alphas, again.history) == (first.config, first.alphas, first.history)
    other = search_darts(config=replace(TINY, epochs=1, seed=TINY.seed + 1))
    assert other.history[0] != first.history[0]


def test_the_search_leaves_the_callers_random_state_alone(tiny_search):
    _, _, unchanged = tiny_search
    assert unchanged


def test_only_the_mnist1d_arch_space_is_supported():
    with pytest.raises(ValueError, match="mnist1d-arch"):
        search_darts(get_space("digits-hparams"), TINY)


@pytest.mark.parametrize("bad", [{"epochs": 0}, {"batch_size": 0}, {"arch_lr": 0.0}, {"arch_weight_decay": -1.0}])
def test_bad_hyper_parameters_are_rejected(bad):
    with pytest.raises(ValueError):
        DartsConfig(**bad)
