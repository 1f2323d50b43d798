"""tfckpt's rows: flat saves and reads, object-based and NumpyState checkpoints."""

from __future__ import annotations

import os
from typing import Any

from ..checks import (
    check_numpy_state_checkpoint,
    check_object_checkpoint,
    check_shape_map,
    check_tensors,
)
from ..context import Bench, Ctx, Skip, need, save_bench
from .registry import impl


@impl(("save", "tfckpt"))
def save(ctx: Ctx) -> Bench:
    import tfckpt

    data = ctx.data()
    prefix = ctx.p.tfckpt
    return save_bench(os.path.dirname(prefix), lambda: tfckpt.save_tensors(prefix, data))


@impl(("save", "tfckpt_durable"))
def save_durable(ctx: Ctx) -> Bench:
    import inspect

    import tfckpt

    if "durable" not in inspect.signature(tfckpt.save_tensors).parameters:
        raise Skip("this tfckpt's save_tensors has no durable= option")
    data = ctx.data()
    prefix = os.path.join(ctx.wdir, "tfckpt_durable", "ckpt")
    return save_bench(
        os.path.dirname(prefix), lambda: tfckpt.save_tensors(prefix, data, durable=True)
    )


@impl(("list", "tfckpt"))
def list_keys(ctx: Ctx) -> Bench:
    import tfckpt

    prefix = need(ctx.p.tfckpt + ".index", "tfckpt checkpoint")[: -len(".index")]

    def run() -> Any:
        reader = tfckpt.load_checkpoint(prefix)
        shapes = reader.get_variable_to_shape_map()
        reader.close()
        return shapes

    return Bench(run, verify=lambda m: check_shape_map(m, ctx.man, "tfckpt list"))


def _read(ctx: Ctx, prefix: str, copy: bool, what: str, bulk: bool = True) -> Bench:
    import tfckpt

    need(prefix + ".index", "checkpoint")

    def run_bulk() -> Any:
        return tfckpt.load_tensors(prefix, copy=copy)

    def run() -> Any:
        reader = tfckpt.load_checkpoint(prefix)
        names = reader.keys()
        out = {name: reader.get_tensor(name, copy=copy) for name in names}
        reader.close()  # zero-copy views keep their memory map alive
        return out

    return Bench(run_bulk if bulk else run, verify=lambda got: check_tensors(got, ctx.man, what))


@impl(("read", "tfckpt"))
def read(ctx: Ctx) -> Bench:
    return _read(ctx, ctx.p.tfckpt, True, "tfckpt read")


@impl(("read", "tfckpt_loop"))
def read_loop(ctx: Ctx) -> Bench:
    return _read(ctx, ctx.p.tfckpt, True, "tfckpt get_tensor loop", bulk=False)


@impl(("read_zc", "tfckpt_loop"))
def read_zero_copy_loop(ctx: Ctx) -> Bench:
    return _read(ctx, ctx.p.tfckpt, False, "tfckpt zero-copy loop", bulk=False)


@impl(("read", "tfckpt_xtf"))
def read_tf_file(ctx: Ctx) -> Bench:
    return _read(ctx, ctx.p.tf, True, "tfckpt read of TF's file")


@impl(("read_zc", "tfckpt"))
def read_zero_copy(ctx: Ctx) -> Bench:
    return _read(ctx, ctx.p.tfckpt, False, "tfckpt zero-copy read")


@impl(("save_obj", "tfckpt"))
def save_object_based(ctx: Ctx) -> Bench:
    import tfckpt

    checkpoint = tfckpt.Checkpoint(**ctx.data())
    prefix = ctx.p.obj_tfckpt
    return save_bench(
        os.path.dirname(prefix),
        lambda: checkpoint.write(prefix),
        lambda _: check_object_checkpoint(prefix, ctx.man, "tfckpt Checkpoint.write"),
    )


@impl(("ns_save", "tfckpt"))
def save_numpy_state(ctx: Ctx) -> Bench:
    import tfckpt

    state = tfckpt.NumpyState()
    for name, value in ctx.data().items():
        setattr(state, name, value)
    checkpoint = tfckpt.Checkpoint(state=state)
    prefix = ctx.p.ns_tfckpt
    return save_bench(
        os.path.dirname(prefix),
        lambda: checkpoint.write(prefix),
        lambda _: check_numpy_state_checkpoint(prefix, ctx.man, "tfckpt NumpyState save"),
    )


@impl(("ns_restore", "tfckpt"))
def restore_numpy_state(ctx: Ctx) -> Bench:
    import tfckpt

    prefix = need(ctx.p.ns_tfckpt + ".index", "tfckpt NumpyState checkpoint")[: -len(".index")]
    names = ctx.man["order"]

    def run() -> Any:
        state = tfckpt.NumpyState()
        tfckpt.Checkpoint(state=state).read(prefix)
        return {name: getattr(state, name) for name in names}

    return Bench(run, verify=lambda got: check_tensors(got, ctx.man, "tfckpt NumpyState restore"))
