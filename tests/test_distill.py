"""Knowledge distillation of a classifier (trends.compression.distill): Hinton et al.'s loss, its reduction to
label training at alpha = 0, and a student that learns more from a teacher's soft targets than from labels."""

import dataclasses

import pytest
import torch

from trends.compression.distill import DistillConfig, accuracy, distill, distillation_loss
from trends.data import load_dataset
from trends.models import LayerSpec, NetworkSpec, build_network, count_parameters
from trends.training import Trainer, TrainRecipe, train_network, train_with_early_stopping

STUDENT = NetworkSpec((LayerSpec("dense", 16),))
TRANSFER_SET = 200  # training samples the student sees; the teacher saw the whole training split
# lr 1e-2: at the default 1e-3 a 16-unit student on digits is still improving when 40 epochs run out.
FAST = dict(learning_rate=1e-2, epochs=100, patience=10, batch_size=32, seed=0)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def teacher(digits):
    """A 256-unit MLP trained on all of digits' training split (about 97% test accuracy, one second)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_network(NetworkSpec((LayerSpec("dense", 256),)), digits.sample_shape, digits.n_classes)
    train_with_early_stopping(Trainer(model, digits, TrainRecipe(learning_rate=1e-2, max_epochs=60, patience=10)))
    return model


@pytest.fixture(scope="module")
def small_transfer_set(digits):
    return dataclasses.replace(digits, x_train=digits.x_train[:TRANSFER_SET], y_train=digits.y_train[:TRANSFER_SET])


def test_distilled_student_beats_the_same_student_trained_on_labels(teacher, small_transfer_set):
    """Hinton et al.'s section 3 effect: soft targets carry far more information per sample than labels, so
    on a small transfer set the student generalises much better. Measured on seeds 0, 1, 2: labels 0.894,
    0.889, 0.883 test accuracy; distilled (T=4, alpha=0.9) 0.961, 0.961, 0.953; teacher 0.972."""
    labels_only = distill(teacher, STUDENT, small_transfer_set, DistillConfig(alpha=0.0, **FAST))
    distilled = distill(teacher, STUDENT, small_transfer_set, DistillConfig(temperature=4.0, alpha=0.9, **FAST))
    assert distilled.parameters * 10 < count_parameters(teacher)
    assert distilled.teacher_test_accuracy > 0.95
    assert distilled.test_accuracy >= labels_only.test_accuracy + 0.04
    assert distilled.test_accuracy >= distilled.teacher_test_accuracy - 0.03


def test_a_higher_temperature_transfers_more_than_the_plain_softmax(teacher, small_transfer_set):
    """At T=1 the teacher's confident softmax is nearly one-hot and hides the similarities between classes
    ("dark knowledge"); measured on seeds 0-2: 0.903, 0.919, 0.908 at T=1 against 0.96 at T=4."""
    plain = distill(teacher, STUDENT, small_transfer_set, DistillConfig(temperature=1.0, alpha=0.9, **FAST))
    softened = distill(teacher, STUDENT, small_transfer_set, DistillConfig(temperature=4.0, alpha=0.9, **FAST))
    assert softened.test_accuracy >= plain.test_accuracy + 0.03


def test_alpha_zero_is_exactly_label_training(teacher, digits):
    config = DistillConfig(alpha=0.0, epochs=6, seed=3)
    distilled = distill(teacher, STUDENT, digits, config)
    trained = train_network(STUDENT, digits, config.recipe)
    assert [e.train_loss for e in distilled.history] == [e.train_loss for e in trained.history]
    assert (distilled.val_loss, distilled.test_accuracy) == (trained.val_loss, trained.test_accuracy)
    assert distilled.best_epoch == trained.best_epoch


def test_the_same_seed_gives_the_same_student(teacher, digits):
    config = DistillConfig(epochs=4, seed=1)
    first, second = distill(teacher, STUDENT, digits, config), distill(teacher, STUDENT, digits, config)
    assert [e.train_loss for e in first.history] == [e.train_loss for e in second.history]
    for a, b in zip(first.student.state_dict().values(), second.student.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    other = distill(teacher, STUDENT, digits, dataclasses.replace(config, seed=2))
    assert [e.train_loss for e in other.history] != [e.train_loss for e in first.history]


def test_the_teacher_is_only_read(teacher, digits):
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    teacher.train()
    distill(teacher, STUDENT, digits, DistillConfig(epochs=1))
    assert teacher.training  # its mode is put back
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    teacher.eval()


def test_the_returned_student_is_the_reported_one(teacher, digits):
    result = distill(teacher, STUDENT, digits, DistillConfig(epochs=3))
    assert accuracy(result.student, digits.x_test, digits.y_test) == pytest.approx(result.test_accuracy)


def test_t_squared_keeps_the_soft_gradients_the_same_size_at_every_temperature():
    """Section 2.1: the soft term's gradient shrinks as 1/T^2; the T^2 factor undoes that, so alpha weighs
    soft against hard targets the same way whatever the temperature."""
    generator = torch.Generator().manual_seed(0)
    teacher_logits = torch.randn(256, 10, generator=generator)
    labels = torch.randint(0, 10, (256,), generator=generator)
    norms = {}
    for T in (10.0, 20.0, 40.0):
        student_logits = torch.randn(256, 10, generator=torch.Generator().manual_seed(1)).requires_grad_()
        distillation_loss(student_logits, teacher_logits, labels, temperature=T, alpha=1.0).backward()
        norms[T] = student_logits.grad.norm().item()
    assert norms[20.0] == pytest.approx(norms[10.0], rel=0.05)
    assert norms[40.0] == pytest.approx(norms[10.0], rel=0.05)


def test_the_soft_term_vanishes_when_the_student_matches_the_teacher():
    logits = torch.randn(8, 10, generator=torch.Generator().manual_seed(0))
    labels = torch.zeros(8, dtype=torch.long)
    assert distillation_loss(logits, logits, labels, temperature=3.0, alpha=1.0).item() == pytest.approx(0, abs=1e-6)
    hard = torch.nn.functional.cross_entropy(logits, labels).item()
    assert distillation_loss(logits, logits, labels, 3.0, alpha=0.5).item() == pytest.approx(0.5 * hard, rel=1e-5)


@pytest.mark.parametrize("bad", [dict(alpha=1.5), dict(alpha=-0.1), dict(temperature=0.0)])
def test_a_bad_config_is_refused(bad):
    with pytest.raises(ValueError):
        DistillConfig(**bad)


def test_a_bad_training_setting_is_refused_when_the_config_is_made():
    with pytest.raises(ValueError, match="batch_size"):
        DistillConfig(batch_size=0)
