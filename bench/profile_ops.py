"""Where a training step's time goes: each backend op's share, next to the GEMM-only bound.

    python bench/profile_ops.py W2 adam [--epochs 3] [--backend cupy [--sync]]

Trains the benchmark's workload (gpunn.benchmark.WORKLOADS), every backend method wrapped
in a timer, and prints microseconds per step for each op, the rest (Python, input checks)
and the GEMM-only runner's step, its epochs taking turns with gpunn's. On the GPU an op's
time is what launching it costs the CPU (the kernels run behind); ``--sync`` waits for
each op, so that its time is the GPU's too. Run it under py-spy for a sampled view:

    py-spy record --native -r 1000 -f raw -o w2.raw -- python bench/profile_ops.py W2 adam
"""

from __future__ import annotations

import argparse
import collections
import time

import numpy as np

import gpunn
from gpunn.benchmark import WORKLOADS, gemm_only_runner, make_data

OPS = ("matmul", "bias_act", "act_grad", "loss_grad", "col_sum", "take_rows", "fused_update",
       "sum_squares")


def timed_backend(backend_name: str, totals: collections.Counter, calls: collections.Counter,
                  sync: bool = False):
    """The shared backend ``backend_name``, each op in ``OPS`` adding its seconds to
    ``totals`` (with ``sync``, the seconds until the device has run it)."""
    backend = gpunn.get_backend(backend_name)
    wait = backend.synchronize if sync else (lambda: None)
    for name in OPS:
        op = getattr(type(backend), name)

        def timed(*args, _op=op, _name=name, **kwargs):
            tic = time.perf_counter()
            result = _op(backend, *args, **kwargs)
            wait()
            totals[_name] += time.perf_counter() - tic
            calls[_name] += 1
            return result

        setattr(backend, name, timed)
    return backend


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("solver", choices=("sgd", "adam"))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--backend", default="numpy", choices=gpunn.available_backends())
    parser.add_argument("--sync", action="store_true", help="wait for the device after each op")
    args = parser.parse_args(argv)
    w = WORKLOADS[args.workload]
    X, y = make_data(w)
    totals, calls = collections.Counter(), collections.Counter()
    backend = timed_backend(args.backend, totals, calls, args.sync)
    est = gpunn.MLPClassifier(w.hidden, w.activation, solver=args.solver, batch_size=w.batch_size,
                              momentum=0.9, random_state=0, backend=args.backend,
                              learning_rate_init=1e-3 if args.solver == "adam" else 1e-2)
    classes = np.arange(w.n_classes)
    xp = getattr(backend, "xp", np)
    gemm_epoch = gemm_only_runner(w, X, xp)
    X = backend.asarray(X)  # on the device once, as the benchmark does
    est.partial_fit(X, y, classes=classes)  # warm-up: buffers, compiled kernels
    gemm_epoch()
    totals.clear()
    calls.clear()
    seconds = gemm_seconds = 0.0
    for _ in range(args.epochs):  # taking turns, so that the machine's slow spells hit both
        tic = time.perf_counter()
        est.partial_fit(X, y, classes=classes)
        backend.synchronize()
        seconds += time.perf_counter() - tic
        tic = time.perf_counter()
        gemm_epoch()
        gemm_seconds += time.perf_counter() - tic
    steps = calls["fused_update"]
    for name in OPS:  # the shared backend goes back to its plain methods
        delattr(backend, name)

    print(f"{w.name} {args.solver} on {args.backend}{' (each op waited for)' if args.sync else ''}: "
          f"{steps} steps of {w.batch_size} rows, "
          f"{seconds / steps * 1e6:,.1f} us per step")
    print(f"{'op':14s} {'us/step':>10s} {'calls/step':>10s} {'share':>6s}")
    for name, total in totals.most_common():
        print(f"{name:14s} {total / steps * 1e6:10.1f} {calls[name] / steps:10.1f} "
              f"{total / seconds:6.1%}")
    rest = seconds - sum(totals.values())
    print(f"{'(the rest)':14s} {rest / steps * 1e6:10.1f} {'':10s} {rest / seconds:6.1%}")
    print(f"GEMM-only runner: {gemm_seconds / steps * 1e6:,.1f} us per step "
          f"(the same GEMMs alone)")


if __name__ == "__main__":
    main()
