"""Test settings shared by every test: headless pygame, one torch thread."""

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import torch

torch.set_num_threads(1)
