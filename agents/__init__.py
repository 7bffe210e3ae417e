"""How agents are made, trained, loaded, judged and compared: Stable-Baselines3 and sb3-contrib algorithms by
name, RL Zoo hyper-parameter files, the non-learning baselines, TensorBoard callbacks, runs on disk, and the
benchmarks whose tables the README shows."""
