"""tfckpt's rows: flat saves and reads, object-based and NumpyState checkpoints."""

from __future__ import annotations

import os
from typing import Any

from .. import files
from ..checks import (
    check_bundle,
    check_loaded_weights,
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


def _compat_train() -> Any:
    """tfckpt's ``tf.train`` namespace, or Skip when this tfckpt has none."""
    try:
        from tfckpt import tf_compat
    except ImportError as exc:
        raise Skip(f"this tfckpt has no tf_compat namespace ({exc})") from None
    return tf_compat.train


def _options(**kwargs: Any) -> Any:
    """``tf_compat.train.CheckpointOptions(**kwargs)``, or Skip when it is not there yet."""
    train = _compat_train()
    options = getattr(train, "CheckpointOptions", None)
    if options is None:
        raise Skip("this tfckpt has no tf_compat.train.CheckpointOptions")
    return options(**kwargs)


def _shard_policy(size: int) -> Any:
    experimental = getattr(_compat_train(), "experimental", None)
    policy = getattr(experimental, "MaxShardSizePolicy", None)
    if policy is None:
        raise Skip("this tfckpt has no tf_compat.train.experimental.MaxShardSizePolicy")
    return policy(max_shard_size=size)


@impl(("save_sharded", "tfckpt"))
def save_sharded(ctx: Ctx) -> Bench:
    import inspect

    import tfckpt

    if "max_shard_size" not in inspect.signature(tfckpt.save_tensors).parameters:
        raise Skip("this tfckpt's save_tensors has no max_shard_size= option yet")
    data = ctx.data()
    prefix = ctx.p.sharded_tfckpt
    size = ctx.max_shard_size()
    return save_bench(
        os.path.dirname(prefix),
        lambda: tfckpt.save_tensors(prefix, data, max_shard_size=size),
        lambda _: check_bundle(prefix, ctx.man, "tfckpt sharded save_tensors"),
    )


@impl(("save_sharded", "tfckpt_obj"))
def save_sharded_object_based(ctx: Ctx) -> Bench:
    import tfckpt

    options = _options(experimental_sharding_callback=_shard_policy(ctx.max_shard_size()))
    checkpoint = tfckpt.Checkpoint(**ctx.data())
    prefix = ctx.p.sharded_obj_tfckpt
    return save_bench(
        os.path.dirname(prefix),
        lambda: checkpoint.write(prefix, options=options),
        lambda _: check_object_checkpoint(prefix, ctx.man, "tfckpt sharded Checkpoint.write"),
    )


def _save_async(ctx: Ctx, mode: str) -> Bench:
    """``Checkpoint.save`` of the workload: ``"sync"``, or asynchronous with only the blocking
    part timed (``"block"``: sync() runs untimed after it) or with sync() timed too."""
    import tfckpt

    checkpoint = tfckpt.Checkpoint(**ctx.data())
    options = None if mode == "sync" else _options(enable_async=True)
    if options is not None and not hasattr(checkpoint, "sync"):
        raise Skip("this tfckpt's Checkpoint has no sync()")
    out_dir = os.path.join(ctx.p.async_dir, f"tfckpt_{mode}")
    prefix = os.path.join(out_dir, "ckpt")
    saved: list[str] = []

    def run() -> None:
        saved.append(checkpoint.save(prefix, options=options))
        if mode == "total":
            checkpoint.sync()

    def after() -> None:
        if mode == "block":
            checkpoint.sync()
        files.fsync_tree(out_dir)

    return Bench(
        run,
        prepare=lambda: files.fresh_dir(out_dir),
        after=after,
        verify=lambda _: check_object_checkpoint(saved[-1], ctx.man, f"tfckpt save ({mode})"),
    )


@impl(("save_async", "tfckpt"))
def save_sync(ctx: Ctx) -> Bench:
    return _save_async(ctx, "sync")


@impl(("save_async", "tfckpt_async_block"))
def save_async_blocking(ctx: Ctx) -> Bench:
    return _save_async(ctx, "block")


@impl(("save_async", "tfckpt_async_total"))
def save_async_total(ctx: Ctx) -> Bench:
    return _save_async(ctx, "total")


def _load_variables(ctx: Ctx, cold: bool) -> Bench:
    """Hugging Face's load_tf_weights_in_bert pattern through tfckpt's tf.train namespace."""
    from .. import workloads

    train = _compat_train()
    prefix = need(ctx.p.tfckpt + ".index", "tfckpt checkpoint")[: -len(".index")]

    def run() -> Any:
        out = {}
        for name, _shape in train.list_variables(prefix):
            if workloads.hf_loaded(name):
                out[name] = train.load_variable(prefix, name)
        return out

    def clear_cache() -> None:
        from tfckpt import reader_cache

        reader_cache.SHARED.clear()

    return Bench(
        run,
        prepare=clear_cache if cold else None,
        verify=lambda got: check_loaded_weights(got, ctx.man, "tfckpt load_variable loop"),
    )


@impl(("load_var", "tfckpt"))
def load_variables(ctx: Ctx) -> Bench:
    return _load_variables(ctx, cold=False)


@impl(("load_var", "tfckpt_cold"))
def load_variables_cold(ctx: Ctx) -> Bench:
    try:
        from tfckpt import reader_cache
    except ImportError:
        raise Skip("this tfckpt has no reader cache") from None
    if not hasattr(getattr(reader_cache, "SHARED", None), "clear"):
        raise Skip("this tfckpt's reader cache cannot be cleared")
    return _load_variables(ctx, cold=True)
