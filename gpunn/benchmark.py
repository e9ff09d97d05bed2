"""Side-by-side training throughput: gpunn on every backend, scikit-learn, PyTorch, GEMM-only.

``gpunn bench`` or ``python -m gpunn.benchmark``. Every implementation trains the same MLP
on the same float32 data (synthetic, standardised, fixed seed), one shuffled epoch at a
time; we report the median samples/s over timed epochs after a warm-up epoch, GFLOP/s,
the share of this machine's measured float32 GEMM peak, and ratios to the peers and to
the GEMM-only bound (the same steps' matrix multiplies and nothing else). A fixed GEMM
probe timed in every round gives each block's "machine" column: its rate against the
run's fastest block, so that a block measured in a slow spell of a shared machine shows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .cli import OneLineParser
from .datasets import load_mnist
from .io import check_output_path
from .mlp import training_flops


@dataclass(frozen=True)
class Workload:
    name: str
    n_features: int
    hidden: tuple[int, ...]
    activation: str
    n_classes: int
    n_samples: int
    batch_size: int

    @property
    def layer_units(self) -> list[int]:
        return [self.n_features, *self.hidden, self.n_classes]

    @property
    def flops_per_sample(self) -> int:
        return training_flops(self.layer_units)


WORKLOADS = {
    "W1": Workload("W1", 3, (5, 2), "logistic", 2, 10_000, 32),
    "W2": Workload("W2", 784, (256, 128), "relu", 10, 60_000, 256),
    "W3": Workload("W3", 784, (256, 128), "logistic", 10, 60_000, 128),
    "W4": Workload("W4", 784, (2048, 2048), "relu", 10, 20_480, 1024),
}
SOLVERS = ("sgd", "adam")  # the two with a partial_fit in scikit-learn


def make_data(w: Workload, seed: int = 0, n_samples: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Standardised float32 features with labels from a random linear teacher."""
    rng = np.random.RandomState(seed)
    n = n_samples or w.n_samples
    X = rng.standard_normal((n, w.n_features)).astype(np.float32)
    teacher = rng.standard_normal((w.n_features, w.n_classes)).astype(np.float32)
    return X, np.argmax(X @ teacher, axis=1)


# -- runners: each returns a function that trains one shuffled epoch ---------------------
def gpunn_runner(backend: str, w: Workload, solver: str, X, y) -> Callable[[], None]:
    import gpunn

    est = gpunn.MLPClassifier(w.hidden, w.activation, solver=solver, batch_size=w.batch_size,
                              momentum=0.9, learning_rate_init=1e-3 if solver == "adam" else 1e-2,
                              random_state=0, backend=backend)
    classes = np.arange(w.n_classes)
    # X goes to the backend's device once, as PyTorch's runner moves its tensors and as
    # fit moves X once for all its epochs; only the labels cross with every call.
    X = gpunn.get_backend(backend).asarray(X)

    def epoch():
        est.partial_fit(X, y, classes=classes)
        est._model.backend.synchronize()

    return epoch


def sklearn_runner(w: Workload, solver: str, X, y) -> Callable[[], None]:
    from sklearn.neural_network import MLPClassifier

    est = MLPClassifier(w.hidden, w.activation, solver=solver, batch_size=w.batch_size,
                        momentum=0.9, learning_rate_init=1e-3 if solver == "adam" else 1e-2,
                        random_state=0)
    classes = np.arange(w.n_classes)
    return lambda: est.partial_fit(X, y, classes=classes)


def torch_runner(device: str, w: Workload, solver: str, X, y) -> Callable[[], None]:
    import torch

    torch.manual_seed(0)
    act = {"relu": torch.nn.ReLU, "logistic": torch.nn.Sigmoid, "tanh": torch.nn.Tanh}[w.activation]
    layers: list = []
    for fan_in, fan_out in zip(w.layer_units[:-2], w.layer_units[1:-1]):
        layers += [torch.nn.Linear(fan_in, fan_out), act()]
    layers.append(torch.nn.Linear(w.layer_units[-2], w.layer_units[-1]))
    model = torch.nn.Sequential(*layers).to(device)
    if solver == "adam":
        try:
            opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
        except (RuntimeError, TypeError):
            opt = torch.optim.Adam(model.parameters(), lr=1e-3, foreach=True)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9, nesterov=True)
    Xt = torch.from_numpy(X).to(device)
    yt = torch.from_numpy(y).to(device)
    loss_fn = torch.nn.CrossEntropyLoss()

    def epoch():
        perm = torch.randperm(len(Xt), device=device)
        for start in range(0, len(Xt), w.batch_size):
            idx = perm[start:start + w.batch_size]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(Xt[idx]), yt[idx])
            loss.backward()
            opt.step()
        if device == "cuda":
            torch.cuda.synchronize()

    return epoch


#: implementations that run on the GPU: divided by the GPU's GEMM-only bound and peak
ON_GPU = ("gpunn-cupy", "pytorch-cuda", "gemm-only-cuda")


#: a fixed CPU GEMM timed in every round of every block, to tell slow spells of the machine
PROBE, PROBE_SIZE, PROBE_MULTIPLIES = "machine-probe", 1024, 3
#: the pause before each timed epoch (see ``time_interleaved``)
SETTLE_SECONDS = 0.1
#: a block whose probe ran below this share of its fastest rate in the run is flagged
SLOW_MACHINE = 0.85


def bound_of(impl: str) -> str:
    """The name of the GEMM-only bound on ``impl``'s device."""
    return "gemm-only-cuda" if impl in ON_GPU else "gemm-only"


def _synchronizer(xp) -> Callable[[], None]:
    """Waits for ``xp``'s device (CuPy's queued kernels); nothing to wait for with NumPy."""
    return (lambda: None) if xp is np else xp.cuda.runtime.deviceSynchronize


def gemm_only_runner(w: Workload, X, xp=np) -> Callable[[], None]:
    """The forward and backward GEMMs of every step of an epoch, on the same shapes, into
    preallocated outputs, and nothing else: not even the gather of each shuffled batch
    (every step multiplies the same rows of X; what a step's data are does not change what
    a GEMM costs). ``xp`` is NumPy (the CPU's BLAS) or CuPy (cuBLAS on the GPU)."""
    rng = np.random.RandomState(0)
    units = w.layer_units
    weights = [xp.asarray(rng.standard_normal((i, o)).astype(np.float32) * 0.01)
               for i, o in zip(units[:-1], units[1:])]
    grads = [xp.empty(W.shape, np.float32) for W in weights]
    acts = [xp.empty((w.batch_size, o), np.float32) for o in units[1:]]
    # finite stand-ins for the backward pass's deltas (np.empty would multiply garbage)
    deltas = [xp.asarray(rng.standard_normal(a.shape).astype(np.float32) * 0.01) for a in acts]
    xb = xp.asarray(np.ascontiguousarray(X[: w.batch_size], dtype=np.float32))
    synchronize = _synchronizer(xp)

    def epoch():
        for start in range(0, len(X), w.batch_size):
            n = min(w.batch_size, len(X) - start)
            a = xb[:n]
            for W, out in zip(weights, acts):
                xp.matmul(a, W, out=out[:n])
                a = out[:n]
            for i in range(len(weights) - 1, -1, -1):
                a_in = xb[:n] if i == 0 else acts[i - 1][:n]
                xp.matmul(a_in.T, deltas[i][:n], out=grads[i])
                if i > 0:
                    xp.matmul(deltas[i][:n], weights[i].T, out=deltas[i - 1][:n])
        synchronize()

    return epoch


def time_interleaved(epochs: dict[str, Callable[[], None]], n_samples: int,
                     repeats: int, settle: float = SETTLE_SECONDS) -> dict[str, list[float]]:
    """samples/s of ``repeats`` epochs of each implementation, after one warm-up each.

    The implementations take turns, one epoch each per round, so a slow spell of a shared
    machine hits all of them alike and the ratios stay fair. Each timed epoch starts
    ``settle`` seconds after the one before: the previous implementation's idle threads
    spin on the cores for a while (PyTorch's OpenMP ~20 ms, OpenBLAS's ~80 ms) and would
    slow the start of the next one's epoch.
    """
    rates: dict[str, list[float]] = {name: [] for name in epochs}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for epoch in epochs.values():
            epoch()
        for _ in range(repeats):
            for name, epoch in epochs.items():
                time.sleep(settle)
                tic = time.perf_counter()
                epoch()
                rates[name].append(n_samples / (time.perf_counter() - tic))
    return rates


def square_gemm(xp=np, size: int = 2048) -> Callable[[], None]:
    """One float32 ``size``-cubed multiply on ``xp``'s device, waited for."""
    rng = np.random.RandomState(0)
    a, b = (xp.asarray(rng.standard_normal((size, size)).astype(np.float32)) for _ in range(2))
    out = xp.empty((size, size), np.float32)
    synchronize = _synchronizer(xp)

    def multiply() -> None:
        xp.matmul(a, b, out=out)
        synchronize()

    return multiply


def machine_probe() -> Callable[[], None]:
    """``PROBE_MULTIPLIES`` CPU multiplies of ``PROBE_SIZE``: the same work in every block."""
    multiply = square_gemm(np, PROBE_SIZE)

    def probe() -> None:
        for _ in range(PROBE_MULTIPLIES):
            multiply()

    return probe


def gemm_peak_gflops(xp=np, size: int = 2048, repeats: int = 5) -> float:
    """The float32 GEMM rate of ``xp``'s device (median of square multiplies), in GFLOP/s."""
    multiply = square_gemm(xp, size)
    multiply()
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        multiply()
        times.append(time.perf_counter() - tic)
    return 2 * size**3 / statistics.median(times) / 1e9


def machine_info() -> dict:
    info = {"python": platform.python_version(), "numpy": np.__version__, "cores": os.cpu_count(),
            "cpu": platform.processor() or platform.machine()}
    try:
        with open("/proc/cpuinfo") as fh:
            info["cpu"] = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    from threadpoolctl import threadpool_info

    info["threadpools"] = [f"{p['internal_api']} {p.get('version')} ({p['num_threads']} threads)"
                           for p in threadpool_info()]
    return info


def implementations(args, gpu_xp=None) -> dict[str, Callable]:
    """name -> factory(workload, solver, X, y) for every implementation available here;
    ``gpu_xp`` (CuPy, where gpunn can use it) adds the GPU's GEMM-only bound."""
    import gpunn

    impls: dict[str, Callable] = {}
    for backend in gpunn.available_backends():
        impls[f"gpunn-{backend}"] = lambda w, s, X, y, b=backend: gpunn_runner(b, w, s, X, y)
    if not args.no_sklearn:
        impls["scikit-learn"] = sklearn_runner
    try:
        import torch

        impls["pytorch-cpu"] = lambda w, s, X, y: torch_runner("cpu", w, s, X, y)
        if torch.cuda.is_available():
            impls["pytorch-cuda"] = lambda w, s, X, y: torch_runner("cuda", w, s, X, y)
    except ImportError:
        pass
    impls["gemm-only"] = lambda w, s, X, y: gemm_only_runner(w, X)
    if gpu_xp is not None:
        impls["gemm-only-cuda"] = lambda w, s, X, y: gemm_only_runner(w, X, gpu_xp)
    return impls


def run(args, mnist: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    """Time every implementation on ``args``' workloads and solvers, and on ``mnist``'s
    (X, y) when given; the rows of the table, with the machine's description."""
    import gpunn

    gpu_xp = None
    if "cupy" in gpunn.available_backends():
        import cupy as gpu_xp
    peaks = {"gemm-only": gemm_peak_gflops()}
    if gpu_xp is not None:  # big enough for a GPU to reach its rate
        peaks["gemm-only-cuda"] = gemm_peak_gflops(gpu_xp, size=8192)
    results = {"machine": machine_info(), "gemm_peak_gflops": peaks["gemm-only"], "rows": []}
    if gpu_xp is not None:
        results["gpu_gemm_peak_gflops"] = peaks["gemm-only-cuda"]
    impls = implementations(args, gpu_xp)
    workloads = [WORKLOADS[name] for name in args.workloads.split(",")]
    if mnist is not None:
        workloads.append(Workload("MNIST", 784, (256, 128), "relu", 10, len(mnist[0]), 256))
    for w in workloads:
        if w.name == "MNIST":
            X, y = mnist
        else:
            X, y = make_data(w, n_samples=args.samples)
        for solver in args.solvers.split(","):
            # the bound does not depend on the solver, but it takes turns with each
            # solver's runs, so that a slow spell of the machine cannot skew the ratios
            epochs = {name: factory(w, solver, X, y) for name, factory in impls.items()}
            epochs[PROBE] = machine_probe()
            rates = time_interleaved(epochs, len(X), args.repeats)
            # the probe's "samples/s" is len(X) per probe: its GFLOP/s in this block
            probe_flops = PROBE_MULTIPLIES * 2 * PROBE_SIZE**3
            probe = statistics.median(rates.pop(PROBE)) / len(X) * probe_flops / 1e9
            for name, impl_rates in rates.items():
                med = statistics.median(impl_rates)
                results["rows"].append({
                    "workload": w.name, "solver": solver, "impl": name, "median": med,
                    "min": min(impl_rates), "max": max(impl_rates),
                    "gflops": med * w.flops_per_sample / 1e9,
                    "pct_peak": 100 * med * w.flops_per_sample / 1e9 / peaks[bound_of(name)],
                    "probe_gflops": probe,
                })
                print(f"  {w.name} {solver:4s} {name:14s} {med:12,.0f} samples/s", file=sys.stderr)
    fastest = max(r["probe_gflops"] for r in results["rows"])
    for r in results["rows"]:
        r["machine_speed"] = r["probe_gflops"] / fastest
    return results


def format_table(results: dict) -> str:
    """The results as a table; the last column is the block's probe against the fastest."""
    rows = results["rows"]
    rate = {(r["workload"], r["solver"], r["impl"]): r["median"] for r in rows}
    peers = [p for p in ("scikit-learn", "pytorch-cpu", "pytorch-cuda") if any(r["impl"] == p for r in rows)]
    head = (f"{'workload':8s} {'solver':6s} {'implementation':14s} {'samples/s (min-max)':>30s} "
            f"{'GFLOP/s':>8s} {'%peak':>6s} " + " ".join(f"{'x ' + p:>14s}" for p in peers)
            + f" {'/ GEMM-only':>11s} {'machine':>8s}")
    peak = f"float32 GEMM peak here: {results['gemm_peak_gflops']:.1f} GFLOP/s"
    if "gpu_gemm_peak_gflops" in results:
        peak += (f" on the CPU, {results['gpu_gemm_peak_gflops']:.1f} GFLOP/s on the GPU "
                 "(GPU rows: %peak and bound of the GPU)")
    lines = [peak, head, "-" * len(head)]
    for r in rows:
        ratios = " ".join(
            f"{r['median'] / rate[(r['workload'], r['solver'], p)]:14.2f}"
            if (r["workload"], r["solver"], p) in rate and r["impl"] != p else f"{'':14s}" for p in peers)
        key = (r["workload"], r["solver"], bound_of(r["impl"]))
        to_bound = f"{r['median'] / rate[key]:11.2f}" if key in rate else ""
        span = f"{r['median']:,.0f} ({r['min']:,.0f}-{r['max']:,.0f})"
        speed = r.get("machine_speed")
        machine = "" if speed is None else f" {speed:7.2f}" + ("*" if speed < SLOW_MACHINE else " ")
        lines.append(f"{r['workload']:8s} {r['solver']:6s} {r['impl']:14s} {span:>30s} "
                     f"{r['gflops']:8.1f} {r['pct_peak']:6.1f} {ratios} {to_bound:>11s}{machine}")
    if any(r.get("machine_speed", 1.0) < SLOW_MACHINE for r in rows):
        lines.append(f"* machine: {PROBE_MULTIPLIES} {PROBE_SIZE}-cubed GEMMs timed in every round "
                     f"of the block ran below {SLOW_MACHINE} of their rate in the run's fastest "
                     "block: the machine was slow then; compare ratios within that block only.")
    return "\n".join(lines)


MEMORY_SCRIPT = """
import numpy as np
from gpunn.benchmark import WORKLOADS, make_data
import gpunn
w = WORKLOADS["W2"]
X, y = make_data(w)
def status(field):
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) for l in fh if l.startswith(field))
with open("/proc/self/clear_refs", "w") as fh:  # reset the peak (VmHWM) to the current RSS
    fh.write("5")
base = status("VmRSS")
gpunn.MLPClassifier(w.hidden, w.activation, batch_size=w.batch_size, max_iter=2, random_state=0,
                    backend="numpy").fit(X, y)
print(base, status("VmHWM"), X.nbytes // 1024)
"""


def memory_check() -> dict:
    """Peak RSS of a 2-epoch W2 fit above the RSS after loading data and gpunn (Linux).

    Runs in a subprocess; the kernel's high-water mark is reset after loading, so the
    float64 temporaries of data generation do not count.
    """
    out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT], capture_output=True, text=True, check=True)
    base, peak, x_kib = map(int, out.stdout.split())
    return {"rss_after_load_mib": base / 1024, "peak_rss_mib": peak / 1024,
            "growth_mib": (peak - base) / 1024, "x_mib": x_kib / 1024,
            "growth_over_x": (peak - base) / x_kib}


def _check_args(parser: argparse.ArgumentParser, args) -> tuple[np.ndarray, np.ndarray] | None:
    """Every option checked, and MNIST loaded, before minutes of timing start: a typo
    costs a one-line error (exit 2), not a traceback at the end of the run."""
    for option, given, known in (("--workloads", args.workloads, WORKLOADS),
                                 ("--solvers", args.solvers, SOLVERS)):
        unknown = [name for name in given.split(",") if name not in known]
        if unknown:
            parser.error(f"{option}: unknown {', '.join(map(repr, unknown))}; "
                         f"choose from {','.join(known)}")
    for option, value in (("--repeats", args.repeats), ("--samples", args.samples)):
        if value is not None and value < 1:
            parser.error(f"{option} must be at least 1, not {value}")
    if args.json:
        try:
            check_output_path(args.json)
        except (OSError, ValueError) as exc:
            parser.error(f"--json: {exc}")
    if not args.mnist:
        return None
    try:
        return load_mnist(args.mnist)
    except (OSError, ValueError) as exc:
        parser.error(f"--mnist: {exc}")


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="gpunn bench", description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="W1,W2,W3,W4", help="comma-separated: W1,W2,W3,W4")
    parser.add_argument("--solvers", default="sgd,adam", help="comma-separated: sgd,adam")
    parser.add_argument("--repeats", type=int, default=5, help="timed epochs of each, after one warm-up")
    parser.add_argument("--samples", type=int, help="override each workload's sample count")
    parser.add_argument("--mnist", help="also train on MNIST IDX files from this folder")
    parser.add_argument("--no-sklearn", action="store_true", help="skip scikit-learn (slow on W4)")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test in seconds")
    parser.add_argument("--memory", action="store_true", help="also measure a W2 fit's peak RSS")
    parser.add_argument("--json", help="write the results to this JSON file")
    args = parser.parse_args(argv)
    mnist = _check_args(parser, args)
    if args.quick:
        args.samples, args.repeats = args.samples or 1024, 1
    results = run(args, mnist)
    if args.memory:
        results["memory"] = memory_check()
    print(format_table(results))
    print("machine:", json.dumps(results["machine"]))
    if "memory" in results:
        m = results["memory"]
        print(f"memory (W2 fit): peak RSS grew {m['growth_mib']:.1f} MiB above the "
              f"{m['rss_after_load_mib']:.1f} MiB after loading; X is {m['x_mib']:.1f} MiB "
              f"(growth / X = {m['growth_over_x']:.2f})")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
