"""Pre-trained vision for pixel agents on tiny budgets: ski (frame, state) pairs, both pre-trainings, loading an
encoder into SB3's CnnPolicy (frozen or not), and the benchmark end to end."""

from dataclasses import replace

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO

from agents.baselines import HeuristicSkier
from agents.benchmarks.pixel_transfer import (
    PixelTransferConfig,
    first_reaching,
    run_pixel_transfer,
    write_pixel_transfer_report,
)
from agents.pixel_transfer import SKI_ID, collect_frames, encoder_init
from trends.transfer.vision import (
    FrameAugmentation,
    NatureEncoder,
    VisionRecipe,
    frames_to_tensor,
    pretrain_contrastive,
    pretrain_supervised,
)

TINY = VisionRecipe(epochs=6, batch_size=32, seed=0)


@pytest.fixture(scope="module")
def pairs():
    return collect_frames(64, seed=3)


@pytest.mark.parametrize("frame_skip, frame_stack", [(1, 1), (4, 2)])
def test_frames_and_states_are_what_the_pixel_and_vector_envs_observe(frame_skip, frame_stack):
    options = {"frame_skip": frame_skip}
    n = 40 if frame_skip == 1 else 80  # the heuristic alone (replayable); at frame skip 4 past a reset
    frames, states = collect_frames(n, seed=7, random_share=0.0, frame_stack=frame_stack, **options)
    assert frames.shape == (n, 84, 84, 3 * frame_stack) and frames.dtype == np.uint8
    assert states.shape == (n, 19) and states.dtype == np.float32
    pixels = gym.make(SKI_ID, obs_type="pixels", frame_stack=frame_stack, **options)
    vector = gym.make(SKI_ID, **options)
    skier = HeuristicSkier(vector.action_space)
    frame, _ = pixels.reset(seed=7)
    state, _ = vector.reset(seed=7)
    resets = 0
    for i in range(n):
        np.testing.assert_array_equal(frames[i], frame)
        np.testing.assert_array_equal(states[i], state)
        action = int(skier.predict(state)[0])
        frame, _, terminated, truncated, _ = pixels.step(action)
        state, *_ = vector.step(action)
        if terminated or truncated:
            resets += 1
            frame, _ = pixels.reset()
            state, _ = vector.reset()
    assert resets == (frame_skip == 4)  # a green run takes 40-70 decisions at frame skip 4
    assert len({f.tobytes() for f in frames}) > 10  # the view moves with the skier


def _shift_of(view: torch.Tensor, frame: torch.Tensor, max_shift: int) -> tuple[int, int] | None:
    """The (dy, dx) that moves ``frame`` onto ``view`` away from the borders, if one of at most ``max_shift`` does."""
    m = max_shift
    inner = view[:, 2 * m : -2 * m, 2 * m : -2 * m]
    for dy in range(-m, m + 1):
        for dx in range(-m, m + 1):
            if torch.allclose(
                inner, frame[:, 2 * m + dy : frame.shape[1] - 2 * m + dy, 2 * m + dx : frame.shape[2] - 2 * m + dx]
            ):
                return dy, dx
    return None


def test_augmentation_shifts_a_few_pixels_and_never_flips():
    x = frames_to_tensor(collect_frames(8, seed=0)[0])
    torch.manual_seed(0)
    views = FrameAugmentation(max_shift=4, brightness=0.0, contrast=0.0, noise=0.0)(x)
    assert views.shape == x.shape
    assert all(_shift_of(v, f, 4) is not None for v, f in zip(views, x, strict=True))  # a translation, not a flip
    jittered = FrameAugmentation()(x)
    assert jittered.min() >= 0.0 and jittered.max() <= 1.0 and not torch.equal(jittered, x)


def test_supervised_pretraining_lowers_its_loss(pairs):
    frames, states = pairs
    recipe = replace(TINY, epochs=12, batch_size=16, lr=1e-3)  # a tiny set: more, bigger steps than the default
    encoder, losses = pretrain_supervised(frames, states, recipe)
    assert isinstance(encoder, NatureEncoder) and len(losses) == recipe.epochs
    assert losses[-1] < 0.7 * losses[0]
    again, _ = pretrain_supervised(frames, states, recipe)  # seeded
    torch.testing.assert_close(again.state_dict(), encoder.state_dict())


def test_contrastive_pretraining_lowers_its_loss(pairs):
    encoder, losses = pretrain_contrastive(pairs[0], TINY)
    assert encoder(frames_to_tensor(pairs[0][:2])).shape == (2, TINY.features_dim)
    assert losses[-1] < losses[0]


def _pixel_ppo() -> PPO:
    env = gym.make(SKI_ID, obs_type="pixels")
    return PPO("CnnPolicy", env, n_steps=32, batch_size=16, n_epochs=1, seed=0, device="cpu")


@pytest.mark.parametrize("freeze", [True, False])
def test_encoder_init_loads_the_encoder_into_a_cnn_policy(freeze):
    encoder = NatureEncoder()
    model = _pixel_ppo()
    encoder_init(encoder.state_dict(), freeze)(model, model.get_env())
    extractor = model.policy.features_extractor
    torch.testing.assert_close(extractor.state_dict(), encoder.state_dict())
    head = model.policy.action_net.weight.detach().clone()
    model.learn(32)
    assert not torch.equal(model.policy.action_net.weight, head)  # the heads learn either way
    after, before = extractor.state_dict(), encoder.state_dict()
    unchanged = all(torch.equal(after[name], before[name]) for name in before)
    assert unchanged == freeze


def test_the_benchmark_runs_end_to_end(tmp_path):
    config = PixelTransferConfig(
        seeds=(0,),
        conditions=("scratch", "supervised-frozen", "contrastive-finetuned"),
        budget=256,
        eval_every=256,
        eval_episodes=1,
        test_episodes=1,
        frames=48,
        pretrain_epochs=1,
        n_envs=2,
        workers=1,
    )
    result = run_pixel_transfer(config)
    assert list(result.runs) == list(config.conditions) and set(result.pretraining) == {"supervised", "contrastive"}
    assert all(
        run["total_steps"] == 256 and run["final_model_on_test"] for runs in result.runs.values() for run in runs
    )
    paths = write_pixel_transfer_report(result, tmp_path)
    text = paths["markdown"].read_text()
    assert "How to read it" in text and "contrastive encoder, fine-tuned" in text and "decisions to return" in text


def test_jobs_pretrain_once_per_seed_and_pretext_and_start_with_the_longest():
    config = PixelTransferConfig(seeds=(0, 1), conditions=("scratch", "supervised-frozen", "supervised-finetuned"))
    assert config.jobs() == [(0, "supervised"), (1, "supervised"), (0, "scratch"), (1, "scratch")]
    with pytest.raises(ValueError, match="unknown conditions"):
        PixelTransferConfig(conditions=("scratch", "imagenet-frozen"))


def test_the_target_is_read_off_the_first_validation_that_reaches_it():
    run = {
        "curve": [
            {"steps": 10, "mean_return": -47.6},
            {"steps": 20, "mean_return": 12.0},
            {"steps": 30, "mean_return": -5.0},
        ]
    }
    assert first_reaching(run, 0.0)["steps"] == 20
    assert first_reaching(run, 50.0) is None
