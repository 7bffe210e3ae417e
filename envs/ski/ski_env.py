"""``trendgym/Ski-v0`` and ``trendgym/SkiContinuous-v0``: a skier learns a slalom course."""

from __future__ import annotations

from collections import deque
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.checks import (
    check_bool,
    check_box_action,
    check_choice,
    check_discrete_action,
    check_int,
    check_options,
    check_render_mode,
)
from envs.rendering import FrameStack
from envs.ski import physics
from envs.ski.course import SLOPES, Course, generate_course, get_slope
from envs.ski.physics import (
    DT,
    OBS_HIGH,
    OBS_LOW,
    CourseTables,
    SlopeConstants,
    advance,
    draw_episode,
    observe,
    padded_tables,
    starting_state,
    step_reward,
)

SOFT_TURN = 0.5  # share of the maximum turn rate that the gentle turn actions use
# Discrete action -> (turn as a share of the maximum rate, snowplough brake)
DISCRETE_ACTIONS: tuple[tuple[float, float], ...] = (
    (-1.0, 0.0),  # 0 hard left
    (-SOFT_TURN, 0.0),  # 1 left
    (0.0, 0.0),  # 2 glide
    (SOFT_TURN, 0.0),  # 3 right
    (1.0, 0.0),  # 4 hard right
    (0.0, 1.0),  # 5 brake (snowplough)
)
ACTION_NAMES = ("hard left", "left", "glide", "right", "hard right", "brake")
GLIDE = 2


def skier_action_masks(down: np.ndarray) -> np.ndarray:
    """(n, 6) masks of the actions that matter for skiers with ``down`` seconds left lying in the snow."""
    masks = np.ones((len(down), len(DISCRETE_ACTIONS)), dtype=bool)
    lying = down > 0.0
    masks[lying] = False
    masks[lying, GLIDE] = True
    return masks


TRAIL_LENGTH = 600  # positions of ski tracks kept for drawing
PIXEL_SIZE = 84  # side of the square image of obs_type="pixels"
MAX_TIME = 100.0  # s of skiing an episode lasts at most, whatever the frame skip (TimeLimit: 1000 steps of DT)
# Bounds of the size arguments, far beyond any use (ALE's frame skip is 4 and Atari agents stack 4 frames):
MAX_FRAME_SKIP = round(MAX_TIME / DT)  # 1000: a larger skip would make every step the whole episode
MAX_FRAME_STACK = 64  # 84 x 84 x 192 uint8, 1.3 MB an observation: 6.4 s of frames 0.1 s apart
RESET_OPTIONS = ("course_seed",)


class SkiEnv(gym.Env):
    """
    ## Description

    A top-down slalom. A skier starts at the top of a piste and skis down the fall line through pairs of
    flags (gates) that alternate from side to side, past trees, to a finish line. Every course is drawn from
    a seed. The physics is the one a skier knows: gravity pulls down the slope; the skis glide easily along
    their length and grip across it, so a gentle carved turn keeps speed while a hard skidded turn sheds it;
    air drag limits the top speed; too sharp a turn at speed makes the skier fall (``FALL_ACCEL``, 15 m/s^2
    of lateral acceleration); the snowplough brakes. A fall costs 1.5 s lying in the snow, a tree or the
    forest at the edge of the piste stops the skier for 3 s. One step is 0.1 s.

    Coordinates: ``y`` metres down the fall line from the start, ``x`` metres across it; the camera looks down
    on the slope with downhill at the bottom of the screen, so ``+x`` is to the right of the screen.

    ## Action Space

    ``Discrete(6)`` (``Ski-v0``):

    | action | meaning | turn rate |
    |---|---|---|
    | 0 | hard left | -1.4 rad/s |
    | 1 | left | -0.7 rad/s |
    | 2 | glide | 0 |
    | 3 | right | +0.7 rad/s |
    | 4 | hard right | +1.4 rad/s |
    | 5 | brake (snowplough, skis straight) | 0 |

    ``Box(-1, 1, (2,))`` (``SkiContinuous-v0``, ``continuous=True``): ``[turn, brake]``; turn rate is
    ``turn * 1.4`` rad/s (negative to the left), the snowplough is ``(brake + 1) / 2`` of full.
    A Box action is any array of 2 real numbers, whatever its dtype (``np.array([1, 0])`` too), or a list or tuple
    of them, as ``Box.contains`` casts lists. An action outside the space (out of range, NaN, a bool, a string, a
    complex number, a wrong shape; for ``Discrete`` anything but an integer or a 0-d integer array) raises
    ``InvalidAction``.
    ``action_masks()`` gives sb3-contrib's MaskablePPO the Discrete actions that matter: all of them while the
    skier is up, only "glide" while lying in the snow.

    ## Observation Space

    ``Box(low, high, (19,), float32)`` with ``obs_type="vector"`` (the default). Positions are relative to the
    skier, divided by 20 m across and 40 m down the slope, and clipped to the range:

    | index | observation | range |
    |---|---|---|
    | 0 | speed / 30 m/s | [0, 1] |
    | 1 | sin(heading), heading measured from the fall line, positive towards +x | [-1, 1] |
    | 2 | cos(heading) | [-1, 1] |
    | 3 | sideways slip of the skis / 10 m/s | [-1, 1] |
    | 4 | x / half the piste width (the forest edges are at -1 and 1) | [-1, 1] |
    | 5 | progress: y / course length | [0, 1] |
    | 6 | time left lying in the snow / 3 s | [0, 1] |
    | 7 | half the gate width / 20 m | [0, 1] |
    | 8 | steepness: sin(slope angle) / sin(30 deg) | [0, 1] |
    | 9, 10 | next gate's centre: dx / 20 m, dy / 40 m (after the last gate: the finish line) | [-1, 1] |
    | 11, 12 | the gate after it, likewise | [-1, 1] |
    | 13-18 | the next three trees on the piste not yet passed: dx / 20 m, dy / 40 m each | [-1, 1] |

    With ``obs_type="pixels"`` the observation is the rendered view around the skier, ``Box(0, 255, (84, 84,
    3), uint8)``, drawn off-screen without opening a window, for CNN policies: 60 m of slope from top to
    bottom with the skier a quarter of the way down, so the next gate is always in view (``3 * frame_stack``
    channels with a frame stack, see below).

    ## Rewards

    * ``+100 * dy / course length`` for progress down the fall line: +100 over the whole course;
    * ``+10`` for each gate passed between its flags, ``-10`` for each gate missed;
    * ``-20`` for a fall, ``-30`` for hitting a tree or the forest edge;
    * ``-0.05`` each step (0.5 per second) for the time taken.

    A clean run (every gate, no fall, no crash) of the green slope scores about 165; the registered
    ``reward_threshold`` of 160 means "skied the green course cleanly". Clean runs of blue and black score
    about 205 and 245.

    ## Starting State

    The skier stands on the start line ``x ~ U(-2, 2)`` m off the fall line, heading ``~ U(-0.2, 0.2)`` rad,
    moving at 3 m/s along the skis.

    ## Episode End

    * Termination: the skier crosses the finish line.
    * Truncation: 100 s of skiing: 1000 steps by the ``TimeLimit`` given at registration, or, with a frame skip,
      by the env itself (1000 / ``frame_skip`` steps).

    ## Information

    ``info`` holds ``gates_passed``, ``gates_missed``, ``falls``, ``tree_hits``, ``time`` (s), ``speed`` (m/s),
    ``finished`` and ``clean`` (finished with every gate passed, no fall and no crash).

    ## Arguments

    ```python
    import gymnasium as gym
    import envs  # registers the trendgym/ ids

    env = gym.make("trendgym/Ski-v0", slope="blue", course_seed=None, obs_type="vector", render_mode="human")
    envs_ = gym.make_vec("trendgym/Ski-v0", num_envs=64, vectorization_mode="vector_entry_point")
    ```

    Every argument is checked for type and range at once: a wrong type raises a ``TypeError`` (that is also a
    ``ValueError``), a value out of range a ``ValueError``, naming the argument (``continuous="False"`` is refused,
    not taken for True).

    * ``slope``: ``"green"`` (12 deg, 8 wide gates, few trees), ``"blue"`` (18 deg, 12 gates) or ``"black"``
      (25 deg, 16 narrow gates, many trees).
    * ``course_seed``: fix one course for every episode; ``None`` (default) draws a new course at each
      reset from the reset seed, so an agent trains on many courses and is evaluated on unseen ones.
      ``reset(options={"course_seed": k})`` picks a course for one episode (a non-negative integer or None; any
      other option is refused).
    * ``obs_type``: ``"vector"`` or ``"pixels"``.
    * ``continuous``: Box actions instead of Discrete (what ``SkiContinuous-v0`` sets); a bool.
    * ``frame_skip``: physics steps per env step (ALE's ``frameskip``): the action repeats, the rewards add up
      and only the last state is observed (and, for pixels, rendered). Pixel agents use 4: a decision every
      0.4 s still skis every green course cleanly (the heuristic skier does), and an episode needs a quarter of
      the decisions and renders. At most 1000 (``MAX_FRAME_SKIP``, 100 s of skiing: one step would be the whole
      episode). The native vector env takes no frame skip.
    * ``frame_stack``: with ``obs_type="pixels"``, the last ``k`` frames side by side along the channels, newest
      last: ``Box(0, 255, (84, 84, 3 * k), uint8)``; at reset the first frame fills every slot. One frame shows
      where the gates are but not how fast the skier goes; two show both. Pixel agents use 2 (with a frame skip
      of 4, the frames are 0.4 s apart). At most 64 (``MAX_FRAME_STACK``, 1.3 MB an observation).

    * ``trees_per_gate``: obstacle trees on the piste per gate, instead of the slope's own (green 0.5, blue 1,
      black 1.5; at most one per 8 m of piste, and at most 10, ``MAX_TREES_PER_GATE``). A training option, not a
      new task: green has only four trees a course, so an agent meets a tree on its line about once in three
      runs and learns the gates long before it learns the trees; training on more of them and judging on the
      slope's own (what ``train_env_kwargs`` in a hyper-parameter entry does) teaches avoiding them (issue 18).

    ## Version History

    * v0: first version. (``trees_per_gate`` was added later; left at ``None`` the env is unchanged.)
    """

    metadata = {
        "render_modes": ["human", "rgb_array"],
        "render_fps": round(1 / DT),
        # What trendgym's TensorBoard callback logs at the end of each episode, under "ski/".
        "metrics_namespace": "ski",
        "episode_metrics": ("gates_passed", "gates_missed", "falls", "tree_hits", "time", "finished", "clean"),
    }

    def __init__(
        self,
        render_mode: str | None = None,
        slope: str = "green",
        course_seed: int | None = None,
        obs_type: str = "vector",
        continuous: bool = False,
        frame_skip: int = 1,
        frame_stack: int = 1,
        trees_per_gate: float | None = None,
    ) -> None:
        check_render_mode(render_mode, self.metadata)
        check_choice("slope", slope, SLOPES)
        check_choice("obs_type", obs_type, ("vector", "pixels"))
        course_seed = check_int("course_seed", course_seed, 0, or_none=True)
        continuous = check_bool("continuous", continuous)
        self.frame_skip = check_int("frame_skip", frame_skip, 1, MAX_FRAME_SKIP)
        frame_stack = check_int("frame_stack", frame_stack, 1, MAX_FRAME_STACK)
        if frame_stack != 1 and obs_type != "pixels":
            raise ValueError(f"frame_stack stacks pixel frames; it needs obs_type='pixels', got {obs_type!r}")
        self._frames = FrameStack(frame_stack)
        self.render_mode = render_mode
        self.slope = get_slope(slope, trees_per_gate)
        self.course_seed = course_seed
        self.obs_type = obs_type
        self.continuous = continuous
        self._constants = SlopeConstants.of(self.slope)
        self._fixed_course = (
            None if course_seed is None else generate_course(np.random.default_rng(course_seed), self.slope)
        )

        if continuous:
            self.action_space = spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
        else:
            self.action_space = spaces.Discrete(len(DISCRETE_ACTIONS))
        if obs_type == "pixels":
            shape = (PIXEL_SIZE, PIXEL_SIZE, 3 * self._frames.k)
            self.observation_space = spaces.Box(0, 255, shape, dtype=np.uint8)
        else:
            self.observation_space = spaces.Box(OBS_LOW, OBS_HIGH, dtype=np.float32)

        self.course: Course | None = None
        self._state: physics.SkierState | None = None
        self._physics_steps = 0  # of DT each, this episode
        self._tables: CourseTables | None = None
        self._gate_status: list[int] = []
        self._trail: deque[tuple[float, float]] = deque(maxlen=TRAIL_LENGTH)
        self._renderer: Any = None
        self._pixel_renderer: Any = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        options = check_options(options, RESET_OPTIONS, "SkiEnv")  # before the reseed: a refused reset changes nothing
        course_seed = check_int("options['course_seed']", options.get("course_seed"), 0, or_none=True)
        super().reset(seed=seed)
        course = self._fixed_course
        if course_seed is not None:
            course = generate_course(np.random.default_rng(course_seed), self.slope)
        self.course, x, heading = draw_episode(self.np_random, self.slope, course)
        self._tables = CourseTables(*(table.tolist() for table in padded_tables(self.course)))
        self._state = starting_state(x, heading)
        self._physics_steps = 0
        self._gate_status = [0] * self.slope.n_gates
        self._trail.clear()
        self._trail.append((x, 0.0))
        if self.render_mode == "human":
            self.render()
        return self._observation(new_episode=True), self._info(False)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        if self._state is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        turn, brake = self._decode(action)
        state, reward = self._state, 0.0
        for _ in range(self.frame_skip):
            gate = state.gate_index
            events = advance(state, turn, brake, self._tables, self._constants)
            if events.passed or events.missed:
                self._gate_status[gate] = 1 if events.passed else -1
            self._trail.append((state.x, state.y))
            reward += step_reward(events)
            self._physics_steps += 1
            if events.finished:
                break
        # The TimeLimit of the registration counts steps; with a frame skip a step is several of DT, so the env
        # ends the episode itself at MAX_TIME (the same moment as the TimeLimit when frame_skip is 1).
        truncated = not events.finished and self._physics_steps * DT >= MAX_TIME - 1e-9
        if self.render_mode == "human":
            self.render()
        return self._observation(), reward, events.finished, truncated, self._info(events.finished)

    def _decode(self, action: Any) -> tuple[float, float]:
        """Turn an action into (turn, brake), refusing anything outside the action space."""
        if self.continuous:
            turn, brake = check_box_action(self.action_space, action, "2 numbers [turn, brake] in [-1, 1]")
            return float(turn), (float(brake) + 1.0) / 2.0
        return DISCRETE_ACTIONS[check_discrete_action(self.action_space, action, f" ({', '.join(ACTION_NAMES)})")]

    def _observation(self, new_episode: bool = False) -> np.ndarray:
        if self.obs_type == "pixels":
            if self._pixel_renderer is None:
                from envs.ski.rendering import SkiRenderer

                self._pixel_renderer = SkiRenderer(PIXEL_SIZE, PIXEL_SIZE, hud=False)
            frame = self._pixel_renderer.rgb_array(self.scene())
            if self._frames.k == 1:
                return frame
            return self._frames.reset(frame) if new_episode else self._frames.push(frame)
        return observe(self._state, self._tables, self._constants)

    def _info(self, finished: bool) -> dict[str, Any]:
        s = self._state
        faults = s.gates_missed + s.falls + s.tree_hits
        return {
            "gates_passed": s.gates_passed,
            "gates_missed": s.gates_missed,
            "falls": s.falls,
            "tree_hits": s.tree_hits,
            "time": s.time,
            "speed": (s.vx * s.vx + s.vy * s.vy) ** 0.5,
            "finished": finished,
            "clean": finished and faults == 0 and s.gates_passed == self.slope.n_gates,
        }

    def scene(self) -> Any:
        """What the renderer draws: the course, the skier, the gates' status, the tracks and the score."""
        from envs.ski.rendering import Scene

        if self._state is None:
            raise gym.error.ResetNeeded("call reset() before render()")
        return Scene.of(self.course, self._state, self._gate_status, list(self._trail))

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            gym.logger.warn(
                "render() was called without a render_mode; pass one to gym.make, e.g. "
                f'gym.make("{self.spec.id if self.spec else "trendgym/Ski-v0"}", render_mode="rgb_array")'
            )
            return None
        if self._renderer is None:
            from envs.ski.rendering import SkiRenderer

            self._renderer = SkiRenderer(human=self.render_mode == "human")
        scene = self.scene()
        if self.render_mode == "human":
            self._renderer.show(scene, self.metadata["render_fps"])
            return None
        return self._renderer.rgb_array(scene)

    def action_masks(self) -> np.ndarray:
        """Which Discrete actions can change anything now, for sb3-contrib's MaskablePPO: every action while
        the skier is up; only "glide" while lying in the snow, when the skier ignores the action anyway."""
        if self.continuous:
            raise gym.error.Error("action masks are for the Discrete actions of Ski-v0, not SkiContinuous-v0")
        if self._state is None:
            raise gym.error.ResetNeeded("call reset() before action_masks()")
        return skier_action_masks(np.array([self._state.down]))[0]

    def get_keys_to_action(self) -> dict[tuple[int, ...], int]:
        """Arrow keys for ``gymnasium.utils.play``: left/right turn, with shift a hard turn, down brakes."""
        import pygame

        keys = {(pygame.K_LEFT,): 1, (pygame.K_RIGHT,): 3, (pygame.K_DOWN,): 5}
        for shift in (pygame.K_LSHIFT, pygame.K_RSHIFT):
            keys[tuple(sorted((pygame.K_LEFT, shift)))] = 0
            keys[tuple(sorted((pygame.K_RIGHT, shift)))] = 4
        return keys

    def close(self) -> None:
        for renderer in (self._renderer, self._pixel_renderer):
            if renderer is not None:
                renderer.close()
        self._renderer = self._pixel_renderer = None
