"""Which seeds train and which judge, kept apart so that an agent is always judged on courses it never saw.

Every ski course is drawn from the seed of the reset that starts it. Training envs are seeded from the run's
``--seed`` (a small number), the evaluation during training from ``VALIDATION_SEED``, and the final judgement
(``evaluate.py``, benchmarks, tests) from ``TEST_SEED``, so the three never share a course.
"""

VALIDATION_SEED = 500_000  # EvalCallback during training: episodes seeded VALIDATION_SEED + i
TEST_SEED = 1_000_000  # evaluate.py and benchmarks: episodes seeded TEST_SEED + i
MAX_TRAIN_SEED = VALIDATION_SEED // 1000  # a run's --seed; its n envs use seeds seed * 1000 + i


def test_seeds(n: int, start: int = TEST_SEED) -> list[int]:
    """The first ``n`` test-episode seeds."""
    return list(range(start, start + n))
