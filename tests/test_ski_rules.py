"""The rules of the slope, one situation at a time: gates, falls, trees, the forest edge, the finish."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.ski import physics
from envs.ski.course import SLOPES, Course, generate_course
from envs.ski.physics import CourseTables, SkierState, SlopeConstants, advance, padded_tables, step_reward

GREEN = SLOPES["green"]
K = SlopeConstants.of(GREEN)


def course_with(gates=((0.0, 30.0),), trees=()) -> CourseTables:
    """A green course holding just these gates and trees."""
    gate_x, gate_y = (np.array(v, dtype=float) for v in zip(*gates, strict=True))
    tree_x, tree_y = (np.array(v, dtype=float) for v in zip(*trees, strict=True)) if trees else (np.zeros(0),) * 2
    course = Course(GREEN, gate_x, gate_y, tree_x, tree_y)
    return CourseTables(*(t.tolist() for t in padded_tables(course)))


def skier(x=0.0, y=0.0, speed=8.0, heading=0.0, down=0.0) -> SkierState:
    s = physics.starting_state(x, heading)
    s.y, s.down = y, down
    s.vx, s.vy = speed * math.sin(heading), speed * math.cos(heading)
    return s


def ski_until(s, course, action=(0.0, 0.0), steps=200, stop=lambda e: False):
    total = 0.0
    for _ in range(steps):
        events = advance(s, *action, course, K)
        total += step_reward(events)
        if stop(events) or events.finished:
            return events, total
    return events, total


def test_passing_a_gate_between_the_flags_earns_the_bonus():
    course = course_with(gates=[(0.0, 5.0), (0.0, 60.0)])
    s = skier(y=4.5)
    events = advance(s, 0.0, 0.0, course, K)
    assert events.passed and not events.missed
    assert s.gates_passed == 1 and s.gate_index == 1
    without_gate = physics.PROGRESS_REWARD * events.progress - physics.TIME_COST * physics.DT
    assert step_reward(events) == pytest.approx(without_gate + physics.GATE_BONUS)


def test_missing_a_gate_costs_the_penalty():
    course = course_with(gates=[(10.0, 5.0), (0.0, 60.0)])  # gate 10 m to the side, 8 m wide
    s = skier(y=4.5)
    events = advance(s, 0.0, 0.0, course, K)
    assert events.missed and not events.passed
    assert s.gates_missed == 1 and s.gate_index == 1
    without_gate = physics.PROGRESS_REWARD * events.progress - physics.TIME_COST * physics.DT
    assert step_reward(events) == pytest.approx(without_gate - physics.GATE_PENALTY)


def test_a_gate_is_judged_where_the_path_crosses_its_line():
    # Starts inside the flags' span, ends outside it, but crosses the line between them: passed.
    course = course_with(gates=[(0.0, 5.0), (0.0, 60.0)])
    s = skier(x=3.7, y=4.9, speed=8.0, heading=1.0)
    assert advance(s, 0.0, 0.0, course, K).passed


def test_too_sharp_a_turn_at_speed_falls_but_not_when_slow():
    course = course_with(gates=[(0.0, 200.0)])
    fast = skier(y=10.0, speed=14.0)  # 14 m/s x 1.4 rad/s = 19.6 m/s^2 > 15
    events = advance(fast, 1.0, 0.0, course, K)
    assert events.fell and fast.falls == 1
    assert fast.down == pytest.approx(physics.FALL_TIME)
    assert step_reward(events) < -physics.FALL_PENALTY + 5
    slow = skier(y=10.0, speed=6.0)  # 6 x 1.4 = 8.4 m/s^2: a hard turn holds
    assert not advance(slow, 1.0, 0.0, course, K).fell
    gentle = skier(y=10.0, speed=14.0)  # the gentle turn at the same speed holds: 14 x 0.7 = 9.8
    assert not advance(gentle, 0.5, 0.0, course, K).fell


def test_a_fallen_skier_lies_still_then_gets_up():
    course = course_with(gates=[(0.0, 200.0)])
    s = skier(y=10.0, speed=14.0)
    advance(s, 1.0, 0.0, course, K)
    y_fallen = s.y
    for _ in range(int(physics.FALL_TIME / physics.DT) - 1):
        advance(s, 1.0, 0.0, course, K)
        assert s.y == y_fallen
    for _ in range(5):
        advance(s, 0.0, 0.0, course, K)
    assert s.y > y_fallen and s.falls == 1


def test_hitting_a_tree_is_penalised_and_stops_the_skier():
    course = course_with(gates=[(0.0, 200.0)], trees=[(0.0, 20.0)])
    s = skier(y=10.0)
    events, _ = ski_until(s, course, stop=lambda e: e.crashed)
    assert events.crashed and s.tree_hits == 1
    assert s.vx == 0 and s.vy == 0 and s.down == pytest.approx(physics.CRASH_TIME)
    assert step_reward(events) < -physics.CRASH_PENALTY + 5
    # After getting up the skier goes on down without hitting the same tree again.
    ski_until(s, course, steps=80)
    assert s.tree_hits == 1 and s.y > 25.0


def test_a_tree_to_the_side_is_not_hit():
    course = course_with(gates=[(0.0, 200.0)], trees=[(2.0, 20.0)])
    s = skier(y=10.0)
    ski_until(s, course, steps=40)
    assert s.tree_hits == 0 and s.y > 25.0


def test_leaving_the_piste_into_the_forest_is_a_crash():
    course = course_with(gates=[(0.0, 200.0)])
    s = skier(x=K.piste_half_width - 0.5, y=10.0, heading=1.2)
    events, _ = ski_until(s, course, stop=lambda e: e.crashed, steps=20)
    assert events.crashed and abs(s.x) < K.piste_half_width


def test_crossing_the_finish_line_finishes():
    course = course_with(gates=[(0.0, 30.0)])
    s = skier(y=K.length - 0.5)
    events = advance(s, 0.0, 0.0, course, K)
    assert events.finished


def test_a_carved_turn_keeps_more_speed_than_a_skid():
    course = course_with(gates=[(0.0, 500.0)])
    carve, skid = skier(y=10.0, speed=6.0), skier(y=10.0, speed=6.0)
    for _ in range(8):  # both turn by the same angle: 8 x 0.1 s x 1.4 rad/s vs 16 x 0.1 s x 0.7 rad/s
        advance(skid, 1.0, 0.0, course, K)
    for _ in range(16):
        advance(carve, 0.5, 0.0, course, K)
    assert carve.heading == pytest.approx(skid.heading)
    speed = lambda s: math.hypot(s.vx, s.vy)  # noqa: E731
    assert speed(carve) > speed(skid)


def test_the_brake_slows_the_skier():
    course = course_with(gates=[(0.0, 500.0)])
    braking, gliding = skier(y=10.0, speed=12.0), skier(y=10.0, speed=12.0)
    for _ in range(20):
        advance(braking, 0.0, 1.0, course, K)
        advance(gliding, 0.0, 0.0, course, K)
    assert math.hypot(braking.vx, braking.vy) < math.hypot(gliding.vx, gliding.vy) - 3.0


def test_gravity_and_drag_give_a_top_speed_that_grows_with_steepness():
    top = {}
    for name, slope in SLOPES.items():
        k = SlopeConstants.of(slope)
        s = skier(speed=0.0)
        for _ in range(600):
            advance(s, 0.0, 0.0, course_with(gates=[(0.0, 1e5)]), k)
        top[name] = math.hypot(s.vx, s.vy)
    assert 8.0 < top["green"] < top["blue"] < top["black"] < physics.MAX_SPEED


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), slope=st.sampled_from(sorted(SLOPES)))
def test_every_course_is_well_formed(seed, slope):
    course = generate_course(np.random.default_rng(seed), SLOPES[slope])
    s = SLOPES[slope]
    assert np.all(np.diff(course.gate_y) > 10.0), "gates are in order, well apart"
    assert np.all(np.abs(course.gate_x) + s.gate_width / 2 < s.piste_width / 2), "every gate lies on the piste"
    assert np.all(np.diff(course.tree_y) >= 6.0), "trees stand 6 m apart down the slope (one in reach per step)"
    assert np.all(np.abs(course.tree_x) < s.piste_width / 2)
    for gx, gy in zip(course.gate_x, course.gate_y, strict=True):
        near = np.abs(course.tree_y - gy) < 5.0
        assert np.all(np.abs(course.tree_x[near] - gx) >= s.gate_width / 2 + 2.0), "no tree blocks a gate"
    assert course.gate_y[-1] < course.length
