"""NumPy's rows: np.save per array, one np.savez, or pickled object arrays (plan.numpy_format)."""

from __future__ import annotations

import json
import os
from typing import Any

from ..checks import check_names, check_tensors
from ..context import Bench, Ctx, need, save_bench
from ..plan import numpy_format
from .registry import impl


@impl(("save", "numpy"), ("ns_save", "numpy"))
def save(ctx: Ctx) -> Bench:
    import numpy as np

    data = ctx.data()
    out = ctx.p.numpy
    fmt = numpy_format(ctx.wl)

    def run() -> None:
        if fmt == "npz":
            np.savez(os.path.join(out, "data.npz"), **data)
            return
        with open(os.path.join(out, "names.json"), "w") as f:
            json.dump(list(data), f)
        for i, value in enumerate(data.values()):
            np.save(os.path.join(out, f"{i:05d}.npy"), value, allow_pickle=(fmt == "pickle"))

    return save_bench(out, run)


@impl(("list", "numpy"))
def list_keys(ctx: Ctx) -> Bench:
    import numpy as np

    path = need(os.path.join(ctx.p.numpy, "data.npz"), "npz file")

    def run() -> Any:
        with np.load(path) as npz:
            return list(npz.files)

    return Bench(run, verify=lambda names: check_names(names, ctx.man, "numpy list"))


@impl(("read", "numpy"), ("ns_restore", "numpy"))
def read(ctx: Ctx) -> Bench:
    import numpy as np

    fmt = numpy_format(ctx.wl)
    root = ctx.p.numpy

    def run() -> Any:
        if fmt == "npz":
            with np.load(os.path.join(root, "data.npz")) as npz:
                return {name: npz[name] for name in npz.files}
        with open(os.path.join(root, "names.json")) as f:
            names = json.load(f)
        return {
            name: np.load(os.path.join(root, f"{i:05d}.npy"), allow_pickle=(fmt == "pickle"))
            for i, name in enumerate(names)
        }

    need(os.path.join(root, "data.npz" if fmt == "npz" else "names.json"), "numpy files")
    return Bench(run, verify=lambda got: check_tensors(got, ctx.man, "numpy load"))


@impl(("save_async", "numpy_copy"))
def copy_arrays(ctx: Ctx) -> Bench:
    """np.copy of every array: what an asynchronous save's snapshot cannot beat."""
    import numpy as np

    data = ctx.data()
    return Bench(
        lambda: {name: np.copy(value) for name, value in data.items()},
        verify=lambda got: check_tensors(got, ctx.man, "np.copy"),
    )
