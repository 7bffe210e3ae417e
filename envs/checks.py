"""The checks every trendgym env makes of what a caller hands it: constructor arguments, reset options and actions.

Gymnasium's own envs assert that an action is in the space (``assert self.action_space.contains(action)``), which
``python -O`` turns off and which says nothing of what was wrong. trendgym's envs answer every bad input at once,
before anything is allocated or trained, with an exception a caller can catch and a one-line message that names
the argument and what it takes:

* a bad action raises gymnasium's :class:`~gymnasium.error.InvalidAction`;
* an argument or option of the wrong type raises :class:`ArgumentTypeError` (a ``TypeError`` that is also a
  ``ValueError``), one out of range or not among the choices a ``ValueError``.

Python's loose types are what these checks are strict about: ``True`` is an ``int`` and ``"False"`` is truthy, so a
flag read from a command line (``continuous:no``) or a count given as ``True`` would otherwise be taken silently.
So a flag must be a bool; a count an integer (numpy's too), never a bool, a float (1.7) or a string ("12"); a
number a finite real (an int or a float, never a bool, a complex or a string).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.error import InvalidAction

SHOWN_LENGTH = 60  # characters of a bad value quoted in an error message: enough to recognise it, one line always


class ArgumentTypeError(TypeError, ValueError):
    """An argument or reset option of the wrong type. A ``TypeError``, as Python raises for a wrong type, and a
    ``ValueError`` too (as scikit-learn's ``InvalidParameterError`` is both): callers, the scripts among them, answer
    a ``ValueError`` as the user's mistake, and a string from a command line where a number belongs is one."""


def shown(value: Any) -> str:
    """``repr(value)`` on one line and at most :data:`SHOWN_LENGTH` characters (an array's repr spans lines, and an
    integer of 5000 digits has none Python will print)."""
    try:
        text = " ".join(repr(value).split())
    except Exception:  # e.g. ValueError: an int beyond sys.get_int_max_str_digits()
        bits = f" of {abs(value).bit_length()} bits" if isinstance(value, int) else ""
        text = f"<{'-' if isinstance(value, int) and value < 0 else ''}{type(value).__name__}{bits}>"
    return text if len(text) <= SHOWN_LENGTH else text[: SHOWN_LENGTH - 3] + "..."


def is_integer(value: Any) -> bool:
    """Whether ``value`` is an integer, Python's or numpy's, and not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    """Whether ``value`` is a real number, Python's or numpy's: an int or a float, not a bool or a complex."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


# ---- constructor arguments and options -------------------------------------------------------------------------


def check_bool(name: str, value: Any) -> bool:
    """``value`` as a bool; it must be one (Python's or numpy's): ``"False"`` and ``"no"`` are not."""
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentTypeError(f"{name} must be True or False, got {shown(value)}")
    return bool(value)


def check_int(name: str, value: Any, low: int, high: int | None = None, *, or_none: bool = False) -> int | None:
    """``value`` as an int in ``low..high`` (``high`` None: no upper bound); None passes with ``or_none``."""
    if value is None and or_none:
        return None
    wanted = f"a whole number >= {low}" if high is None else f"a whole number in {low}..{high}"
    if or_none:
        wanted += " or None"
    if not is_integer(value):
        raise ArgumentTypeError(f"{name} must be {wanted}, got {shown(value)}")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be {wanted}, got {shown(value)}")
    return int(value)


def check_float(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    or_none: bool = False,
) -> float | None:
    """``value`` as a finite float within the bounds given (open or closed ends); None passes with ``or_none``."""
    if value is None and or_none:
        return None
    if low is not None and high is not None:
        wanted = f"a finite number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    elif low is not None:
        wanted = f"a finite number {'>' if low_open else '>='} {low:g}"
    elif high is not None:
        wanted = f"a finite number {'<' if high_open else '<='} {high:g}"
    else:
        wanted = "a finite number"
    if or_none:
        wanted += " or None"
    if not is_real(value):
        raise ArgumentTypeError(f"{name} must be {wanted}, got {shown(value)}")
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        number = math.inf
    too_low = low is not None and (number <= low if low_open else number < low)
    too_high = high is not None and (number >= high if high_open else number > high)
    if not math.isfinite(number) or too_low or too_high:
        raise ValueError(f"{name} must be {wanted}, got {shown(value)}")
    return number


def check_choice(name: str, value: Any, choices: Collection[str], alternative: str = "") -> str:
    """``value``, which must be one of the strings ``choices``; ``alternative`` names what else the caller takes
    (e.g. ``"a MemberPool"``), for the message only."""
    wanted = f"{name} must be one of {', '.join(choices)}{f' or {alternative}' if alternative else ''}"
    if not isinstance(value, str):  # before `in`: an array compared with strings has no truth value
        raise ArgumentTypeError(f"{wanted}, got {shown(value)}")
    if value not in choices:
        raise ValueError(f"{wanted}, got {shown(value)}")
    return value


def check_render_mode(render_mode: Any, metadata: Mapping[str, Any]) -> str | None:
    """``render_mode``: None or one of ``metadata["render_modes"]``."""
    if render_mode is None:
        return None
    return check_choice("render_mode", render_mode, metadata["render_modes"], "None")


def check_path(name: str, value: Any, default: Path | None = None) -> Path | None:
    """``value`` as a :class:`~pathlib.Path` (a ``str`` or path-like); None gives ``default``."""
    if value is None:
        return default
    if not isinstance(value, (str, PathLike)):
        raise ArgumentTypeError(f"{name} must be a folder (a str or pathlib.Path) or None, got {shown(value)}")
    return Path(value)


def check_storage(name: str, value: Any) -> str | PathLike | None:
    """``value``, which must name a storage: a SQLAlchemy URL (a ``str``), a path-like SQLite file, or None. The URL
    itself is checked where the storage opens (:func:`trends.automl.evaluator.storage_url`)."""
    if value is not None and not isinstance(value, (str, PathLike)):
        raise ArgumentTypeError(
            f"{name} must be a SQLAlchemy URL (a str), a pathlib.Path of a SQLite file or None, got {shown(value)}"
        )
    return value


def check_options(options: Any, allowed: Collection[str], env_name: str) -> dict[str, Any]:
    """``reset``'s ``options`` as a dict (None: empty), refusing a key that is not in ``allowed``: a mistyped option
    silently ignored is an episode that is not the one asked for."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise ArgumentTypeError(f"options must be a dict or None, got {shown(options)}")
    unknown = [key for key in options if key not in allowed]
    if unknown:
        if not allowed:
            takes = f"{env_name} takes none"
        elif len(allowed) == 1:
            takes = f"the only option is {next(iter(allowed))!r}"
        else:
            takes = f"the options are {', '.join(map(repr, allowed))}"
        raise ValueError(f"unknown reset option(s) {shown(sorted(map(str, unknown)))}; {takes}")
    return dict(options)


# ---- actions ---------------------------------------------------------------------------------------------------


def check_discrete_action(space: spaces.Discrete, action: Any, hint: str = "", one_element: bool = False) -> int:
    """The action of a ``Discrete`` space as an int, or :class:`~gymnasium.error.InvalidAction`.

    What ``space.contains`` accepts passes: a Python or numpy integer, or a 0-d integer array; a bool does not
    (``Discrete.contains(True)`` is True only because ``bool`` subclasses ``int``). ``one_element`` also lets a
    one-element integer array through, for the envs that have documented it. ``hint`` says what the actions mean,
    after the range in the message.
    """
    shapes = ((), (1,)) if one_element else ((),)
    if isinstance(action, np.ndarray) and action.dtype.kind in "iu" and action.shape in shapes:
        action = action.reshape(())[()]
    first, last = int(space.start), int(space.start + space.n - 1)
    if not is_integer(action) or not first <= action <= last:
        raise InvalidAction(f"action must be an integer in {first}..{last}{hint}, got {shown(action)}")
    return int(action)


def check_multi_discrete_actions(space: spaces.MultiDiscrete, actions: Any, hint: str = "") -> np.ndarray:
    """A batch of Discrete actions (a vector env's ``MultiDiscrete`` space) as an int64 array, or
    :class:`~gymnasium.error.InvalidAction`: integers of the space's shape, each in ``0..nvec - 1``."""
    a = _as_array(actions)
    if a is None or a.dtype.kind not in "iu" or a.shape != space.shape or np.any(a < 0) or np.any(a >= space.nvec):
        wanted = f"{len(space.nvec)} integers in 0..{int(np.max(space.nvec)) - 1}{hint}"
        raise InvalidAction(f"actions must be {wanted}, got {shown(actions)}")
    return a.astype(np.int64)


def check_box_action(space: spaces.Box, action: Any, what: str, clip: bool = False) -> np.ndarray:
    """The action of a ``Box`` space as a float64 array of its shape, or :class:`~gymnasium.error.InvalidAction`.

    Any array of real numbers of the space's shape passes, whatever its dtype (``np.array([1, 0])`` as well as
    float32), and so does a list or tuple of them, as ``Box.contains`` casts lists; a scalar is not an array of
    shape ``(1,)`` (``Box.contains`` refuses it too). Bools, complex numbers, strings and NaN or infinite values never
    pass. Finite values outside the bounds are clipped with ``clip`` (as Gymnasium's continuous-control envs clip,
    so that an unbounded Gaussian policy works as it is) and refused without. ``what`` describes a valid action.
    """
    a = _as_array(action)
    valid = a is not None and a.dtype.kind in "iuf" and a.shape == space.shape
    if valid:
        a = a.astype(np.float64)
        valid = bool(np.all(np.isfinite(a))) and (clip or bool(np.all((a >= space.low) & (a <= space.high))))
    if not valid:
        raise InvalidAction(f"action must be {what}, got {shown(action)}")
    return np.clip(a, space.low, space.high) if clip else a


def _as_array(value: Any) -> np.ndarray | None:
    """``value`` as a numpy array, or None when numpy cannot make one (a ragged list, an int beyond int64...)."""
    if isinstance(value, np.ndarray):
        return value
    try:
        return np.asarray(value)
    except (TypeError, ValueError, OverflowError):
        return None
