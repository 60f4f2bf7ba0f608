"""The pseudo-experiment engine: compile, dispatch, collect, reduce, checkpoint.

A pseudo-experiment is a pure function ``key -> {name: Estimate}``.  The engine runs
``P`` of them.  Pseudo-experiment ``i`` always gets ``jax.random.fold_in(root, i)``,
whatever the chunk size or device count, and the host-side reductions (moments,
failures by result code and histograms; ``jaxunc.engine.reduce``) are computed over
fixed blocks of ``REDUCTION_BLOCK`` consecutive pseudo-experiments merged in index
order, so results are identical bit for bit for any chunk size.  Events never leave
the device: a chunk returns only per-pseudo-experiment estimates, so memory is
bounded by the chunk, not by ``P × N_gen``.

Scale: chunks are split over the local devices (one single-device program per
device) and, after ``jax.distributed.initialize``, over processes (contiguous shares,
exchanged with JAX's collectives); runs checkpoint and resume (``checkpoint=``), run a
range of pseudo-experiments (``pseudo_range=``) whose exact reductions
(``partials=``) merge into one run's result (``merge=``).  Every one of these gives
the same bits as one uninterrupted single-device run.  Options:
``jaxunc.engine.options``; how a run is cut up: ``jaxunc.engine.plan``; file formats:
``jaxunc.engine.checkpoint``.

The chain itself (θ → D_train → fit → D_gen) is ``jaxunc.engine.chain``.
"""

from __future__ import annotations

import collections
import io
import pickle
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxunc.engine.checkpoint import (
    FORMAT_VERSION,
    PartialState,
    covering_order,
    describe_mismatch,
    identity_hash,
    open_checkpoint,
    read_state,
    remove_temporaries,
    write_state,
)
from jaxunc.engine.identity import Traced, output_layout, run_identity, trace
from jaxunc.engine.options import EngineOptions
from jaxunc.engine.plan import (
    MAX_PSEUDO_EXPERIMENTS,
    VECTOR_WIDTH,
    Plan,
    check_memory,
    default_memory_budget,
    make_plan,
    output_bytes,
    vector_width,
)
from jaxunc.engine.reduce import (
    Accumulator,
    Layout,
    exchange_between_processes,
    merge_accumulators,
    new_accumulators,
    states_from_arrays,
    states_to_arrays,
)
from jaxunc.errors import InvalidArgument, check_positive_int
from jaxunc.estimators import Estimate

__all__ = [
    "EngineResult",
    "RunStats",
    "pseudo_experiment_key",
    "run_pseudo_experiments",
]


def pseudo_experiment_key(root: jax.Array, index: int | jax.Array) -> jax.Array:
    """Key of pseudo-experiment ``index``: ``fold_in(root, index)``."""
    return jax.random.fold_in(root, index)


class RunStats(NamedTuple):
    """Throughput of a run (compile time reported separately, not included in
    seconds).  ``pseudo_experiments``/``events``: what the result covers;
    ``computed``: the pseudo-experiments this call computed (less than
    ``pseudo_experiments`` after a resume or a merge); ``events_per_second`` is over
    the computed ones."""

    seconds: float
    compile_seconds: float
    pseudo_experiments: int
    events: int
    events_per_second: float
    chunk_size: int
    chunks: int
    backend: str
    device_count: int
    jax_version: str
    computed: int = 0
    vector_width: int = VECTOR_WIDTH
    process_count: int = 1
    pseudo_range: tuple[int, int] = (0, 0)
    memory_budget: int = 0


class EngineResult(NamedTuple):
    """``outputs[name]``: dict of numpy arrays (count, mean, mean_stderr, std,
    std_stderr, failures, failures_by_result (``(len(RESULT_NAMES), *shape)``; row
    0 counts the successes), and histogram/underflow/overflow/edges where edges were
    given).  After a run of a range (``pseudo_range``), the moments are those of
    the range's pseudo-experiments only."""

    outputs: dict[str, dict[str, np.ndarray]]
    stats: RunStats


class _Run(NamedTuple):
    """What every stage of one run needs: the traced function, the root key, the
    options, the local devices, the output layout and the identity (and hash)."""

    traced: Traced
    key: jax.Array
    options: EngineOptions
    devices: list[jax.Device]
    layout: Layout
    identity: dict[str, Any]
    digest: str


def run_pseudo_experiments(
    pseudo_experiment: Callable[[jax.Array], Mapping[str, Estimate]],
    key: jax.Array,
    n_pseudo: int,
    *,
    options: EngineOptions | None = None,
    **engine_options: Any,
) -> EngineResult:
    """Run ``n_pseudo`` pseudo-experiments and reduce their estimates on the fly.

    Args:
      pseudo_experiment: ``key -> {name: Estimate(value (..., d), ok (...),
        result (...) or None)}``, pure.
      key: root key; pseudo-experiment ``i`` gets ``fold_in(key, i)``.
      n_pseudo: number of pseudo-experiments, 1 ≤ P < 2**32.
      options: an ``EngineOptions``; ``engine_options`` (its field names:
        chunk_size, events_per_pseudo_experiment, histogram_edges, progress,
        devices, description, config, checkpoint, checkpoint_interval, pseudo_range,
        partials, merge, memory_budget) build one, or replace fields of ``options``.

    Returns an ``EngineResult``.  Results are identical, bit for bit, for any chunk
    size, device count, process count, resume point or split into merged ranges.
    """
    if options is None:
        options = EngineOptions(**engine_options)
    elif engine_options:
        options = options.replace(**engine_options)
    n_pseudo = check_positive_int(
        "n_pseudo", n_pseudo, maximum=MAX_PSEUDO_EXPERIMENTS - 1
    )
    run = _prepare(pseudo_experiment, key, n_pseudo, options)
    budget = (
        default_memory_budget(run.devices)
        if options.memory_budget is None
        else options.memory_budget
    )
    if options.merge is not None:
        return _merged_run(run, budget)
    processes = (
        (1, 0)
        if options.devices is not None
        else (jax.process_count(), jax.process_index())
    )
    plan = make_plan(
        n_pseudo,
        options.pseudo_range,
        options.chunk_size,
        options.events_per_pseudo_experiment,
        output_bytes(run.traced.shapes),
        len(run.devices),
        processes,
        budget,
    )
    return _computed_run(run, plan)


def _prepare(
    pseudo_experiment: Callable[[jax.Array], Mapping[str, Estimate]],
    key: jax.Array,
    n_pseudo: int,
    options: EngineOptions,
) -> _Run:
    """Trace the pseudo-experiment once and derive the layout and the identity."""
    devices = list(jax.local_devices() if options.devices is None else options.devices)
    traced = trace(pseudo_experiment, key)
    all_edges = options.histogram_edges or {}
    edges = {name: all_edges.get(name) for name in traced.shapes}
    identity = run_identity(
        options.description,
        n_pseudo,
        key,
        options.config,
        traced,
        edges,
        vector_width(options.events_per_pseudo_experiment),
    )
    return _Run(
        traced,
        key,
        options,
        devices,
        output_layout(traced.shapes, edges),
        identity,
        identity_hash(identity),
    )


# --------------------------------------------------------------------- computed runs


def _computed_run(run: _Run, plan: Plan) -> EngineResult:
    """Compute this process's share of the plan's range (resuming from a checkpoint
    if there is one), then exchange, record the partial result and summarise."""
    state_path, accumulators = _resume(run, plan)
    resumed_at = (
        next(iter(accumulators.values())).position if accumulators else plan.share_start
    )
    chunk_starts = plan.chunk_starts(resumed_at)
    executables, compile_seconds = _compile(run, plan) if chunk_starts else ([], 0.0)
    if executables:
        check_memory(executables[0][2], plan, output_bytes(run.traced.shapes))
    meta = {
        "format": FORMAT_VERSION,
        "identity_sha256": run.digest,
        "start": plan.share_start,
        "stop": plan.share_stop,
    }
    start_time = time.perf_counter()
    _stream(
        run, plan, executables, chunk_starts, resumed_at, accumulators, state_path, meta
    )
    computed_seconds = time.perf_counter() - start_time
    accumulators = _gather(run, plan, accumulators, meta)
    outputs = {name: acc.finish() for name, acc in accumulators.items()}
    computed = plan.share_stop - resumed_at
    events_per_pe = run.options.events_per_pseudo_experiment
    stats = RunStats(
        seconds=time.perf_counter() - start_time,
        compile_seconds=compile_seconds,
        pseudo_experiments=plan.stop - plan.start,
        events=(plan.stop - plan.start) * events_per_pe,
        events_per_second=(
            computed * events_per_pe / computed_seconds
            if computed and computed_seconds > 0
            else 0.0
        ),
        chunk_size=plan.chunk_size,
        chunks=len(chunk_starts),
        backend=run.devices[0].platform,
        device_count=len(run.devices) * plan.processes,
        jax_version=jax.__version__,
        computed=computed,
        vector_width=plan.width,
        process_count=plan.processes,
        pseudo_range=(plan.start, plan.stop),
        memory_budget=plan.budget,
    )
    return EngineResult(outputs, stats)


def _gather(
    run: _Run, plan: Plan, accumulators: dict[str, Accumulator], meta: dict
) -> dict[str, Accumulator]:
    """The accumulators of the whole range: every process's share merged (after
    ``jax.distributed.initialize``); recorded in ``options.partials`` if given."""
    if plan.processes > 1:
        parts = [
            states_from_arrays(arrays, run.layout, "a process's state", "devices")
            for arrays, _ in exchange_between_processes(accumulators, meta)
        ]
        accumulators = merge_accumulators(parts, run.layout, plan.start)
    if run.options.partials is not None:
        run.options.partials.add(
            PartialState(
                run.identity,
                run.digest,
                plan.start,
                plan.stop,
                states_to_arrays(accumulators),
            )
        )
    return accumulators


def _resume(run: _Run, plan: Plan) -> tuple[Path | None, dict[str, Accumulator]]:
    """The checkpoint state file of this process's share (None without
    ``checkpoint``) and the accumulators to continue: read from that file if it
    exists, else empty ones."""
    accumulators = new_accumulators(run.layout, plan.share_start)
    if run.options.checkpoint is None:
        return None, accumulators
    folder = open_checkpoint(run.options.checkpoint, run.identity)
    state_path = folder / f"state-{plan.share_start}-{plan.share_stop}.npz"
    remove_temporaries(state_path)  # of a write killed with SIGKILL
    if not state_path.exists():
        return state_path, accumulators
    arrays, meta = read_state(state_path, "checkpoint")
    if (
        meta.get("identity_sha256") != run.digest
        or meta.get("start") != plan.share_start
        or meta.get("stop") != plan.share_stop
    ):
        raise InvalidArgument(
            "checkpoint",
            f"{str(state_path)!r} belongs to another run; delete it to start that "
            "run over",
        )
    accumulators = states_from_arrays(
        arrays, run.layout, repr(str(state_path)), "checkpoint"
    )
    _check_resume_point(accumulators, plan, state_path)
    return state_path, accumulators


def _check_resume_point(
    accumulators: Mapping[str, Accumulator], plan: Plan, state_path: Path
) -> None:
    """Refuse a checkpoint whose outputs cover different ranges, whose range does not
    start at the share's start, or whose position is not one the run writes: the
    end of a chunk (a whole number of vectorised steps from 0) or of the share."""
    ranges = {(acc.start, acc.position) for acc in accumulators.values()}
    where = repr(str(state_path))
    if len(ranges) != 1:
        raise InvalidArgument(
            "checkpoint",
            f"{where} is corrupt: its outputs cover different ranges "
            f"({', '.join(f'[{a}, {b})' for a, b in sorted(ranges))})",
        )
    ((start, position),) = ranges
    if start != plan.share_start or not start <= position <= plan.share_stop:
        raise InvalidArgument(
            "checkpoint",
            f"{where} is corrupt: it covers [{start}, {position}), not a part of "
            f"this process's share [{plan.share_start}, {plan.share_stop}) from its "
            "start",
        )
    if start < position < plan.share_stop and position % plan.width:
        raise InvalidArgument(
            "checkpoint",
            f"{where} is corrupt: its position {position} is no chunk's end (chunks "
            f"end on multiples of the vectorised step {plan.width}, or at "
            f"{plan.share_stop})",
        )


_COMPILED: collections.OrderedDict = collections.OrderedDict()
_COMPILED_CACHE_SIZE = 8
"""Compiled chunks of the last few runs, keyed by the traced function (its jaxpr and
constants), the chunk shape and the devices: a study that runs the same
pseudo-experiment again (another key, a resume, a range) does not recompile."""


def _chunk_function(
    traced: Traced, per_device: int, width: int
) -> Callable[[jax.Array, jax.Array, jax.Array], dict[str, Estimate]]:
    """``(root, first, steps) -> estimates`` of pseudo-experiments [first, first +
    per_device) on one device: a loop over vectorised steps of ``width``, of which
    only the first ``steps`` (int32[], at most ``per_device // width``) run; the
    rows of the steps not run are zeros.

    The trip count is an argument, not part of the program, so a run's last,
    partial chunk computes only the steps it needs with the same compiled program
    (and the same loop body: the same bits) as the full chunks, instead of a whole
    chunk of pseudo-experiments that are thrown away (up to 5 % of a 65536-toy
    run at the default chunk of 4608) or a second compilation.
    """
    n_steps = per_device // width

    def chunk(root: jax.Array, first: jax.Array, steps: jax.Array):
        offsets = jnp.arange(per_device, dtype=jnp.uint32).reshape(n_steps, width)
        keys = jax.vmap(
            jax.vmap(pseudo_experiment_key, in_axes=(None, 0)), in_axes=(None, 0)
        )(root, first + offsets)

        def body(i, outputs):
            estimates = jax.vmap(traced.function)(keys[i])
            return jax.tree_util.tree_map(
                lambda out, new: jax.lax.dynamic_update_index_in_dim(out, new, i, 0),
                outputs,
                estimates,
            )

        zeros = jax.tree_util.tree_map(
            lambda s: jnp.zeros((n_steps, *s.shape), s.dtype),
            jax.eval_shape(jax.vmap(traced.function), keys[0]),
        )
        outputs = jax.lax.fori_loop(0, steps, body, zeros)
        return jax.tree_util.tree_map(
            lambda a: a.reshape(per_device, *a.shape[2:]), outputs
        )

    return chunk


def _compile(run: _Run, plan: Plan) -> tuple[list[tuple], float]:
    """One compiled single-device chunk program per local device (from the cache
    when the same function, shape and device ran recently), as ``(device, root key
    on it, executable)``, and the seconds spent compiling.

    Every device runs its own copy of one single-device program on its share of the
    chunk (dispatched asynchronously, so they run concurrently).  A program
    partitioned over several devices is compiled differently by XLA and can change
    the last bits of, e.g., a Newton fit; this keeps 1, 2 or 4 devices identical bit
    for bit.  When XLA compiled the first device's program in this call, the other
    devices load that same binary (``_load_on_device``: a fraction of a second,
    where compiling again took as long as the first time).  A program that JAX's
    persistent cache supplied is compiled (or read from that cache) per device
    instead: XLA:CPU cannot serialise a program it read back from disk (JAX 0.10:
    the copy fails at run time with "Function ... not found").
    """
    chunk = _chunk_function(run.traced, plan.per_device, plan.width)
    executables, compile_seconds = [], 0.0
    template = None
    for device in run.devices:
        cache_key = (
            str(run.traced.closed.jaxpr),  # with object addresses: distinct callbacks
            run.traced.fingerprint,
            str(jax.random.key_impl(run.key)),
            plan.per_device,
            plan.width,
            device.id,
            jax.config.jax_enable_x64,
        )
        entry = _COMPILED.get(cache_key)
        if entry is None:
            compile_start = time.perf_counter()
            loaded = None if template is None else _load_on_device(template, device)
            if loaded is not None:
                entry = (loaded, False)
            else:
                placed = jax.device_put((run.key, jnp.uint32(0), jnp.int32(0)), device)
                entry = _compile_and_tell(jax.jit(chunk), placed)
            compile_seconds += time.perf_counter() - compile_start
            _COMPILED[cache_key] = entry
            while len(_COMPILED) > _COMPILED_CACHE_SIZE:
                _COMPILED.popitem(last=False)
        _COMPILED.move_to_end(cache_key)
        compiled, compiled_here = entry
        if template is None and compiled_here:
            template = compiled
        executables.append((device, jax.device_put(run.key, device), compiled))
    return executables, compile_seconds


_CACHE_EVENTS = threading.local()
"""``log``: the persistent-cache events of the compilation in progress (None
outside ``_compile_and_tell``)."""


def _record_cache_event(event: str, **_: Any) -> None:
    log = getattr(_CACHE_EVENTS, "log", None)
    if log is not None and event.startswith("/jax/compilation_cache/"):
        log.append(event)


jax.monitoring.register_event_listener(_record_cache_event)


def _compile_and_tell(function: Any, arguments: tuple) -> tuple[Any, bool]:
    """``function.lower(*arguments).compile()`` and whether XLA compiled it in this
    call: True after a persistent-cache miss, or without a cache hit while the
    persistent cache is off; False when the program came from that cache (or, the
    cache on, from JAX's in-memory cache, which may hold one that did)."""
    _CACHE_EVENTS.log = []
    try:
        compiled = function.lower(*arguments).compile()
    finally:
        events, _CACHE_EVENTS.log = _CACHE_EVENTS.log, None
    if "/jax/compilation_cache/cache_misses" in events:
        return compiled, True
    cache_on = jax.config.jax_enable_compilation_cache and bool(
        jax.config.jax_compilation_cache_dir
    )
    return compiled, not cache_on and "/jax/compilation_cache/cache_hits" not in events


class _ExecutableLoader(pickle.Unpickler):
    """Reads ``jax.experimental.serialize_executable.serialize``'s payload back with
    its executable assigned to ``device`` (and its recorded device, the one it was
    compiled for, replaced by ``device``)."""

    def __init__(self, payload: bytes, device: jax.Device):
        super().__init__(io.BytesIO(payload))
        self.device = device

    def persistent_load(self, pid):
        from jax._src.lib import xla_client  # no public route to these (JAX 0.10)

        kind = pid[0]
        if kind == "exec":
            options = xla_client.CompileOptions()
            options.executable_build_options.device_assignment = (
                xla_client.DeviceAssignment.create(np.array([[self.device.id]]))
            )
            return self.device.client.deserialize_executable(
                pid[1],
                executable_devices=xla_client.DeviceList((self.device,)),
                compile_options=options,
            )
        if kind == "device":
            return self.device
        if kind == "client":
            return self.device.client
        raise pickle.UnpicklingError(f"unknown persistent id {kind!r}")


def _load_on_device(compiled: Any, device: jax.Device) -> Any | None:
    """The compiled single-device program ``compiled`` as an executable on
    ``device``: the same machine code (so the same bits), loaded instead of
    compiled again.  None where the executable cannot be serialised (e.g. a
    program with host callbacks, or one with hoisted constant arguments) or the
    backend refuses to load it elsewhere; the caller then compiles for ``device``."""
    from jax.experimental import serialize_executable

    if getattr(getattr(compiled, "_params", None), "const_args", None):
        return None
    try:
        payload, in_tree, out_tree = serialize_executable.serialize(compiled)
        unloaded, args_info, no_kwargs = _ExecutableLoader(payload, device).load()
        return jax.stages.Compiled(
            unloaded.load(), [], in_tree.unflatten(args_info), out_tree, no_kwargs
        )
    except Exception:  # any failure (private API changed...): compile instead
        return None


def _device_steps(plan: Plan, first: int, devices: int) -> list[int]:
    """Vectorised steps each device computes of the chunk at ``first``: all of its
    share (``per_device // width``) in a full chunk; in a partial last chunk only
    the steps that hold pseudo-experiments of the share, spread evenly over the
    devices (the first ones take one more), so the devices stay contiguous in
    order: device i starts ``width × (steps of devices 0..i-1)`` after ``first``."""
    total = -(-min(plan.chunk_size, plan.share_stop - first) // plan.width)
    base, extra = divmod(total, devices)
    return [base + (i < extra) for i in range(devices)]


def _dispatch(executables: Sequence[tuple], plan: Plan, first: int) -> list:
    """Start the chunk at ``first`` on every device that has steps to compute
    (asynchronously); ``(outputs, rows)`` per started device, in order."""
    started, start = [], first
    for (device, root, compiled), steps in zip(
        executables, _device_steps(plan, first, len(executables)), strict=True
    ):
        if steps == 0:
            continue
        arguments = jax.device_put((np.uint32(start), np.int32(steps)), device)
        started.append((compiled(root, *arguments), steps * plan.width))
        start += steps * plan.width
    return started


def _collect(started: list) -> dict[str, Estimate]:
    """The started devices' computed rows of one chunk on the host, concatenated in
    order (row r is pseudo-experiment ``first + r``)."""
    parts = jax.device_get([outputs for outputs, _ in started])
    parts = [
        jax.tree_util.tree_map(lambda a, rows=rows: a[:rows], part)
        for part, (_, rows) in zip(parts, started, strict=True)
    ]
    return jax.tree_util.tree_map(lambda *a: np.concatenate(a), *parts)


def _reduce_chunk(
    accumulators: Mapping[str, Accumulator],
    host: Mapping[str, Estimate],
    lo: int,
    hi: int,
) -> None:
    """Feed rows [lo, hi) of one chunk's outputs (chunk-relative) to the
    accumulators."""
    for name, estimate in host.items():
        result = None if estimate.result is None else np.asarray(estimate.result)
        accumulators[name].update(
            np.asarray(estimate.value)[lo:hi],
            np.asarray(estimate.ok)[lo:hi],
            None if result is None else result[lo:hi],
        )


def _stream(
    run: _Run,
    plan: Plan,
    executables: Sequence[tuple],
    chunk_starts: Sequence[int],
    resumed_at: int,
    accumulators: Mapping[str, Accumulator],
    state_path: Path | None,
    meta: dict,
) -> None:
    """The loop: dispatch the next chunk before reducing the current one, write the
    checkpoint every ``checkpoint_interval`` seconds and after the last chunk."""
    from tqdm.auto import tqdm

    bar = tqdm(
        total=plan.share_stop - plan.share_start,
        initial=resumed_at - plan.share_start,
        desc=run.options.description,
        unit="PE",
        disable=None if run.options.progress else True,
        delay=1.0,
        mininterval=0.5,
    )
    last_write = time.perf_counter()
    if chunk_starts:
        in_flight = _dispatch(executables, plan, chunk_starts[0])
    for number, first in enumerate(chunk_starts):
        current = in_flight
        if number + 1 < len(chunk_starts):  # dispatch the next before reducing this
            in_flight = _dispatch(executables, plan, chunk_starts[number + 1])
        lo = max(first, resumed_at)
        hi = min(first + plan.chunk_size, plan.share_stop)
        _reduce_chunk(accumulators, _collect(current), lo - first, hi - first)
        bar.update(hi - lo)
        now = time.perf_counter()
        if state_path is not None and (
            now - last_write >= run.options.checkpoint_interval or hi == plan.share_stop
        ):
            write_state(state_path, states_to_arrays(accumulators), meta)
            last_write = now
    bar.close()


# ----------------------------------------------------------------------- merged runs


def _merged_run(run: _Run, budget: int) -> EngineResult:
    """Nothing computed: the partial results of ``options.merge`` covering [0, P)
    merged into the result of one run."""
    description = run.identity["description"]
    states = [
        part.states[description]
        for part in run.options.merge
        if description in part.states
    ]
    if not states:
        raise InvalidArgument(
            "parts", f"no partial result holds the run {description!r}"
        )
    for state in states:
        if state.identity_sha256 != run.digest:
            raise InvalidArgument(
                "parts",
                f"the partial result of run {description!r} for [{state.start}, "
                f"{state.stop}) has a different configuration (differs in: "
                f"{describe_mismatch(state.identity, run.identity)})",
            )
    ordered = covering_order(states, "parts")
    parts = [_partial_accumulators(run.layout, state) for state in ordered]
    merged = merge_accumulators(parts, run.layout, 0)
    outputs = {name: acc.finish() for name, acc in merged.items()}
    n_pseudo = run.identity["n_pseudo"]
    stats = RunStats(
        seconds=0.0,
        compile_seconds=0.0,
        pseudo_experiments=n_pseudo,
        events=0,
        events_per_second=0.0,
        chunk_size=0,
        chunks=0,
        backend=run.devices[0].platform,
        device_count=len(run.devices),
        jax_version=jax.__version__,
        computed=0,
        vector_width=run.identity["vector_width"],
        process_count=1,
        pseudo_range=(0, n_pseudo),
        memory_budget=budget,
    )
    return EngineResult(outputs, stats)


def _partial_accumulators(layout: Layout, state: PartialState) -> dict:
    """The accumulators of one partial result, checked to cover its range."""
    where = f"the partial result [{state.start}, {state.stop})"
    part = states_from_arrays(state.arrays, layout, where, "parts")
    for acc in part.values():
        if (acc.start, acc.position) != (state.start, state.stop):
            raise InvalidArgument(
                "parts", f"{where} is corrupt (its reductions cover another range)"
            )
    return part
