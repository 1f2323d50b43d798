"""Optional dependencies, imported only when a feature needs them.

``import tfckpt`` never imports these: safetensors, tqdm, h5py, torch and jax are each
imported by the function that uses them, through :func:`require`, which turns a missing
package into an error that says what to install (h5py is imported by
:mod:`tfckpt.convert.keras_h5` itself, whose error says what ``require("h5py")`` says).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from tfckpt.errors import UnsupportedError

# module -> (the extra of tfckpt that installs it, or None, and what needs it)
_EXTRAS: dict[str, tuple[str | None, str]] = {
    "safetensors": ("safetensors", "reading and writing .safetensors files"),
    "safetensors.numpy": ("safetensors", "reading and writing .safetensors files"),
    "tqdm": ("progress", "progress bars"),
    "h5py": ("h5", "writing Keras .weights.h5 files"),
    "torch": (None, 'framework="pt"'),
    "jax": (None, 'framework="jax"'),
    "jax.numpy": (None, 'framework="jax"'),
}


class MissingExtraError(UnsupportedError, ImportError):
    """An optional package that the requested feature needs is not installed."""


def install_hint(module: str) -> str:
    """What to run to get ``module``, e.g. ``pip install "tfckpt[safetensors]"``."""
    extra, _ = _EXTRAS.get(module, (None, ""))
    if extra is None:
        return f"pip install {module.split('.')[0]}"
    return f'pip install "tfckpt[{extra}]"'


def require(module: str) -> ModuleType:
    """Imports ``module`` or raises MissingExtraError naming the package to install.

    Raises:
        MissingExtraError: the package is not installed.

    Example::

        safetensors_numpy = require("safetensors.numpy")
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        _, purpose = _EXTRAS.get(module, (None, "this feature"))
        raise MissingExtraError(
            f"{module.split('.')[0]} is not installed; it is needed for {purpose} "
            f"({install_hint(module)})"
        ) from None


def available(module: str) -> bool:
    """Whether ``module`` can be imported (importing it if so)."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True
