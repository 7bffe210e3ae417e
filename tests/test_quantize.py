"""Post-training quantization: float16 and int8 copies are smaller and as accurate, no deprecation warning
escapes, and simulated k-bit weights lose accuracy and gain error as the bits fall."""

import itertools
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.ao.nn.quantized import dynamic as quantized_dynamic

from trends.compression import (
    Float16Model,
    fake_quantize,
    quantizable_layers,
    quantize_weight,
    quantized_size_bytes,
    state_dict_bytes,
    to_float16,
    to_int8_dynamic,
)
from trends.data import load_dataset
from trends.models import LayerSpec, NetworkSpec, build_network
from trends.training import Trainer, TrainRecipe

EPOCHS = 10  # about 1.5 s on one core; the MLP reaches about 92% test accuracy on digits


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def trained_mlp(digits):
    """A digits MLP (64 -> 128 -> 10) trained for a few epochs. Built and trained here rather than by
    ``train_network``, which reports a result but does not return the model."""
    torch.manual_seed(0)
    model = build_network(NetworkSpec((LayerSpec("dense", 128),)), digits.sample_shape, digits.n_classes)
    trainer = Trainer(model, digits, TrainRecipe(seed=0))
    for _ in range(EPOCHS):
        trainer.run_epoch()
    return model.eval()


def accuracy(model: nn.Module, dataset) -> float:
    with torch.no_grad():
        predictions = model(torch.tensor(dataset.x_test)).argmax(dim=1)
    return float((predictions == torch.tensor(dataset.y_test)).float().mean())


@pytest.fixture(scope="module")
def fp32_accuracy(trained_mlp, digits):
    return accuracy(trained_mlp, digits)


def test_the_trained_model_is_worth_quantizing(fp32_accuracy):
    assert fp32_accuracy > 0.85


def test_int8_is_smaller_and_as_accurate(trained_mlp, digits, fp32_accuracy):
    int8 = to_int8_dynamic(trained_mlp)
    assert state_dict_bytes(int8) < 0.5 * state_dict_bytes(trained_mlp)
    assert abs(accuracy(int8, digits) - fp32_accuracy) <= 0.015


def test_float16_is_smaller_and_as_accurate(trained_mlp, digits, fp32_accuracy):
    fp16 = to_float16(trained_mlp)
    assert fp16.compute == "float32"  # on a CPU, half is a storage format
    assert all(t.dtype == torch.float16 for t in fp16.state_dict().values())
    assert state_dict_bytes(fp16) < 0.6 * state_dict_bytes(trained_mlp)
    assert abs(accuracy(fp16, digits) - fp32_accuracy) <= 0.01
    x = torch.tensor(digits.x_test[:32])
    with torch.no_grad():
        output = fp16(x)
        half_compute = Float16Model(trained_mlp, compute="float16")(x)
    assert output.dtype == half_compute.dtype == torch.float32
    assert torch.allclose(output, half_compute, atol=0.05)
    with pytest.raises(ValueError, match="compute"):
        Float16Model(trained_mlp, compute="bfloat16")


def test_quantizing_copies_and_leaves_the_model_alone(trained_mlp):
    before = {k: v.clone() for k, v in trained_mlp.state_dict().items()}
    to_int8_dynamic(trained_mlp)
    to_float16(trained_mlp)
    fake_quantize(trained_mlp, [2, 2])
    assert all(torch.equal(before[k], v) for k, v in trained_mlp.state_dict().items())
    assert all(isinstance(m, nn.Linear) for _, m in quantizable_layers(trained_mlp))


def test_no_warning_escapes_int8_quantization(trained_mlp):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        int8 = to_int8_dynamic(trained_mlp)
        with torch.no_grad():
            int8(torch.zeros(2, 1, 8, 8))
        state_dict_bytes(int8)


def test_int8_quantizes_linear_layers_and_leaves_convolutions_float():
    torch.manual_seed(0)
    spec = NetworkSpec((LayerSpec("conv", 8), LayerSpec("dense", 16)))
    cnn = build_network(spec, (1, 40), 10)
    int8 = to_int8_dynamic(cnn)
    assert type(int8.conv1.layer) is nn.Conv1d
    assert isinstance(int8.dense1.layer, quantized_dynamic.Linear)
    assert isinstance(int8.head, quantized_dynamic.Linear)
    x = torch.randn(4, 1, 40)
    with torch.no_grad():
        assert torch.allclose(int8(x), cnn.eval()(x), atol=0.05)


def test_quantizable_layers_are_the_linear_and_conv_layers_in_order():
    cnn = build_network(NetworkSpec((LayerSpec("conv", 8, skip=True), LayerSpec("dense", 16))), (1, 40), 10)
    names = [name for name, _ in quantizable_layers(cnn)]
    assert names == ["conv1.layer", "conv1.shortcut", "dense1.layer", "head"]


def loss_on_test(model: nn.Module, dataset) -> float:
    with torch.no_grad():
        logits = model(torch.tensor(dataset.x_test))
    return nn.functional.cross_entropy(logits, torch.tensor(dataset.y_test)).item()


def test_eight_bits_are_nearly_lossless_and_two_bits_are_not(trained_mlp, digits, fp32_accuracy):
    assert abs(accuracy(fake_quantize(trained_mlp, [8, 8]), digits) - fp32_accuracy) <= 0.01
    assert accuracy(fake_quantize(trained_mlp, [2, 2]), digits) < fp32_accuracy
    # the test loss, smoother than the accuracy of 360 digits (measured: 0.40 in float32 and at 8 bits, 0.44 at 3
    # bits, 0.62 at 2, 1.01 at 1)
    losses = {bits: loss_on_test(fake_quantize(trained_mlp, [bits, bits]), digits) for bits in (1, 2, 3, 8)}
    assert abs(losses[8] - loss_on_test(trained_mlp, digits)) < 0.01
    assert losses[1] > losses[2] > 1.2 * losses[8]
    assert losses[2] > losses[3] > losses[8]


def test_weight_error_falls_with_every_bit(trained_mlp):
    for _, layer in quantizable_layers(trained_mlp):
        errors = [(quantize_weight(layer.weight, b) - layer.weight).square().mean().item() for b in range(1, 9)]
        assert all(later < earlier for earlier, later in itertools.pairwise(errors)), errors


def test_k_bit_weights_take_at_most_2_to_the_k_levels_per_channel(trained_mlp):
    weight = trained_mlp.head.weight
    for bits in (1, 2, 3, 4):
        quantized = quantize_weight(weight, bits)
        for channel in quantized:
            assert len(torch.unique(channel)) <= max(2, 2**bits - 1)
    binary = quantize_weight(weight, 1)
    assert torch.allclose(binary.abs(), weight.abs().mean(dim=1, keepdim=True).expand_as(weight))
    assert torch.equal(binary > 0, weight >= 0)


def test_a_mapping_quantizes_only_the_layers_it_names(trained_mlp):
    mixed = fake_quantize(trained_mlp, {"head": 2})
    assert torch.equal(mixed.dense1.layer.weight, trained_mlp.dense1.layer.weight)
    assert not torch.equal(mixed.head.weight, trained_mlp.head.weight)
    assert torch.equal(mixed.head.bias, trained_mlp.head.bias)  # biases stay float


def test_quantized_size_is_the_bit_arithmetic(trained_mlp):
    dense, head = 64 * 128, 128 * 10
    assert quantized_size_bytes(trained_mlp, [8, 4]) == dense + head // 2
    assert quantized_size_bytes(trained_mlp, {"head": 1}) == dense * 4 + head // 8
    assert quantized_size_bytes(trained_mlp, {}) == (dense + head) * 4
    assert quantized_size_bytes(nn.Linear(3, 1), [1]) == 1  # 3 bits round up to a byte
    assert quantized_size_bytes(trained_mlp, np.array([8, 4])) == dense + head // 2  # an environment's action


@pytest.mark.parametrize(
    ("bits", "match"),
    [([8], "2 quantizable layers"), ([8, 0], "from 1 to 8"), ([9, 8], "from 1 to 8"), ({"body": 4}, "body")],
)
def test_bad_bit_widths_are_rejected(trained_mlp, bits, match):
    with pytest.raises(ValueError, match=match):
        fake_quantize(trained_mlp, bits)
    with pytest.raises(ValueError, match=match):
        quantized_size_bytes(trained_mlp, bits)
