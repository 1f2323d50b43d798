"""What the subcommands share: options, JSON output, name lookup, value printing."""

from __future__ import annotations

import argparse
import base64
import contextlib
import difflib
import json
import re
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from tfckpt.inspection.selection import compile_pattern


class UsageError(Exception):
    """The command line asks for something that cannot be done (exit code 2)."""


def add_debug(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,  # (so that `tfckpt --debug CMD` is not overridden)
        help="show the traceback of an error",
    )


def add_json(parser: argparse.ArgumentParser, what: str = "the result") -> None:
    parser.add_argument("--json", action="store_true", help=f"print {what} as JSON")


def add_filter(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--filter",
        metavar="REGEX",
        help="only names matching this regular expression (searched anywhere in the name)",
    )


def add_progress(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (one is shown on a terminal when tqdm is installed)",
    )


def name_filter(args: argparse.Namespace) -> re.Pattern[str] | None:
    """The compiled ``--filter``, or None."""
    pattern = getattr(args, "filter", None)
    return None if pattern is None else compile_pattern(pattern, "--filter pattern")


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, allow_nan=False)
    sys.stdout.write("\n")


def unknown_name(name: str, known: Sequence[str], where: str) -> UsageError:
    """The error for a tensor name the checkpoint does not hold, with close matches."""
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    suggestion = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return UsageError(f"{where}: no tensor {name!r}{suggestion} (`tfckpt inspect` lists them)")


def parse_printoption(text: str) -> tuple[str, Any]:
    """``'threshold=100000'`` -> ``('threshold', 100000)``, typed as NumPy's current value
    (as TensorFlow's inspect_checkpoint ``--printoptions`` does)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not in the form k=v")
    current: dict[str, Any] = dict(np.get_printoptions())
    if key not in current or key == "formatter":
        raise argparse.ArgumentTypeError(f"{key!r} is not a valid printoption")
    kind = type(current[key])
    if current[key] is None:
        raise argparse.ArgumentTypeError(f"setting {key!r} from the command line is not supported")
    try:
        if kind is bool:
            if value.lower() not in ("true", "false", "1", "0"):
                raise ValueError(f"expected true or false, got {value!r}")
            return key, value.lower() in ("true", "1")
        return key, kind(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{key}: {exc}") from None


def add_printoptions(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--printoptions",
        nargs="*",
        type=parse_printoption,
        default=[],
        metavar="K=V",
        help="numpy.set_printoptions() settings for printed values, e.g. threshold=100000",
    )


@contextlib.contextmanager
def printoptions(args: argparse.Namespace) -> Iterator[None]:
    """NumPy print options for this command only (restored afterwards)."""
    with np.printoptions(**dict(getattr(args, "printoptions", None) or [])):
        yield


def json_values(value: Any) -> Any:
    """A tensor's values as JSON data: nested lists; non-finite floats as the strings
    ``"nan"``, ``"inf"``, ``"-inf"``; strings as text when every element is UTF-8, else as
    ``{"base64": [...]}``."""
    array = np.asarray(value) if not isinstance(value, bytes) else np.array(value, dtype=object)
    if array.dtype == object:
        flat = [bytes(v) for v in array.reshape(-1).tolist()]
        try:
            texts: list[Any] = [v.decode("utf-8") for v in flat]
        except UnicodeDecodeError:
            encoded = [base64.b64encode(v).decode("ascii") for v in flat]
            return {"base64": _nest(encoded, array.shape)}
        return _nest(texts, array.shape)
    if array.dtype.kind == "V" and array.dtype.fields is None:
        array = array.astype(np.float64)  # bfloat16, float8, ...: as exact doubles
    if array.dtype.fields is not None:
        return _nest([str(v) for v in array.reshape(-1).tolist()], array.shape)
    if array.dtype.kind == "c":
        pairs = [[_finite(z.real), _finite(z.imag)] for z in array.reshape(-1).tolist()]
        return _nest(pairs, array.shape)
    if array.dtype.kind == "f":
        return _nest([_finite(v) for v in array.reshape(-1).tolist()], array.shape)
    return array.tolist()


def _finite(value: float) -> float | str:
    if value != value:
        return "nan"
    if value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    return value


def _nest(flat: list[Any], shape: tuple[int, ...]) -> Any:
    if not shape:
        return flat[0]
    if len(shape) == 1:
        return flat
    step = len(flat) // shape[0] if shape[0] else 0
    return [_nest(flat[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]
