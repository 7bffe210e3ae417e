"""The ski-learning environment: a slalom course, skier physics, a pygame renderer and a heuristic skier."""

from envs.ski.course import SLOPES, Course, Slope, generate_course
from envs.ski.ski_env import SkiEnv

__all__ = ["SLOPES", "Course", "SkiEnv", "Slope", "generate_course"]
