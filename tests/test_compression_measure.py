"""measure(): exact parameter and FLOP counts on networks counted by hand, bytes on disk, latency behaviour, and
Stable-Baselines3 policies through policy_module."""

import gymnasium as gym
import pytest
import torch
from stable_baselines3 import DQN, PPO
from torch import nn

from trends.compression import measure, policy_module, state_dict_bytes, to_int8_dynamic


def tiny_mlp() -> nn.Module:
    # Linear(4, 3): 12 weights + 3 biases, 12 MACs; Linear(3, 2): 6 + 2, 6 MACs
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))


def tiny_cnn() -> nn.Module:
    # Conv1d(1, 2, 3) on length 5 ('same'): 6 + 2 parameters, 2 x 5 outputs x 3 MACs = 30
    # Linear(10, 2): 20 + 2 parameters, 20 MACs
    return nn.Sequential(nn.Conv1d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(10, 2))


def mlp(width: int) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, width), nn.ReLU(), nn.Linear(width, 10))


def test_parameters_and_flops_match_a_hand_count():
    m = measure(tiny_mlp(), (4,), repeats=2)
    assert (m.parameters, m.nonzero_parameters, m.flops) == (23, 23, 18)
    m = measure(tiny_cnn(), (1, 5), repeats=2)
    assert (m.parameters, m.nonzero_parameters, m.flops) == (30, 30, 50)


def test_nonzero_parameters_count_what_pruning_zeroed():
    model = tiny_mlp()
    with torch.no_grad():
        model[0].weight[:, :2] = 0.0  # 6 of the 12 weights
    m = measure(model, (4,), repeats=2)
    assert (m.parameters, m.nonzero_parameters) == (23, 17)


def test_int8_layers_are_counted_like_the_float_ones():
    model = mlp(32)
    fp32, int8 = measure(model, (1, 8, 8), repeats=2), measure(to_int8_dynamic(model), (1, 8, 8), repeats=2)
    assert int8.parameters == fp32.parameters == 64 * 32 + 32 + 32 * 10 + 10
    assert int8.flops == fp32.flops == 64 * 32 + 32 * 10


def test_bytes_grow_with_width():
    sizes = [measure(mlp(width), (1, 8, 8), repeats=1).size_bytes for width in (8, 32, 128)]
    assert sizes[0] < sizes[1] < sizes[2]
    assert sizes[2] > 4 * (64 * 128 + 128 * 10)  # float32: at least four bytes a weight
    assert sizes[2] == state_dict_bytes(mlp(128))


def test_latency_is_positive_and_batches_are_cheaper_per_sample():
    m = measure(mlp(128), (1, 8, 8), repeats=10, batch_sizes=(1, 256))
    assert [latency.batch_size for latency in m.latency] == [1, 256]
    for latency in m.latency:
        assert 0 < latency.min_ms <= latency.median_ms <= latency.max_ms
        assert latency.calls == 10
    # a batch of 256 costs far less than 256 single calls (python and dispatch overhead dominate one sample)
    assert m.latency_at(256).per_sample_ms < m.latency_at(1).per_sample_ms
    with pytest.raises(KeyError, match="batch size 64"):
        m.latency_at(64)


def test_measure_leaves_the_model_and_torch_as_they_were():
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5)).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    threads = torch.get_num_threads()
    measure(model, (4,), repeats=2)
    assert model.training and torch.get_num_threads() == threads
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="repeats"):
        measure(tiny_mlp(), (4,), repeats=0)
    with pytest.raises(ValueError, match="batch sizes"):
        measure(tiny_mlp(), (4,), batch_sizes=(0,))


@pytest.fixture(scope="module")
def ppo():
    return PPO("MlpPolicy", gym.make("CartPole-v1"), policy_kwargs={"net_arch": [16]}, seed=0, device="cpu")


def test_policy_module_is_the_actor_of_a_ppo(ppo):
    actor = policy_module(ppo)
    obs = torch.randn(5, 4)
    with torch.no_grad():
        expected = ppo.policy.get_distribution(obs).distribution.probs
        assert torch.allclose(actor(obs).softmax(dim=1), expected, atol=1e-6)
    m = measure(actor, ppo.observation_space.shape, repeats=2)
    # the actor only: Linear(4, 16) and the action head Linear(16, 2); the critic is left out
    assert m.parameters == (4 * 16 + 16) + (16 * 2 + 2)
    assert m.flops == 4 * 16 + 16 * 2
    assert policy_module(ppo.policy) is not None  # the policy itself is accepted too


def test_a_compressed_policy_module_acts_like_the_policy():
    # wide enough for int8 to pay: a quantized layer's checkpoint carries about a kilobyte of packing overhead,
    # so the 16-unit actor above is larger in int8 than in float32
    ppo = PPO("MlpPolicy", gym.make("CartPole-v1"), policy_kwargs={"net_arch": [64, 64]}, seed=0, device="cpu")
    actor = policy_module(ppo)
    int8 = to_int8_dynamic(actor)
    obs = torch.randn(64, 4)
    with torch.no_grad():
        agree = (int8(obs).argmax(dim=1) == actor(obs).argmax(dim=1)).float().mean()
    assert agree > 0.9
    assert measure(int8, (4,), repeats=2).size_bytes < state_dict_bytes(actor)


def test_policy_module_of_a_dqn_is_its_q_network():
    dqn = DQN("MlpPolicy", gym.make("CartPole-v1"), policy_kwargs={"net_arch": [8]}, seed=0, device="cpu")
    q_net = policy_module(dqn)
    assert q_net is dqn.policy.q_net
    assert measure(q_net, (4,), repeats=2).flops == 4 * 8 + 8 * 2


def test_policy_module_rejects_what_is_not_a_policy():
    with pytest.raises(TypeError, match="actor"):
        policy_module(tiny_mlp())
