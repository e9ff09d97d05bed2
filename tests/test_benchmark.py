"""The benchmark command runs end to end on tiny sizes (structure only: no timing asserts)."""

import json

import numpy as np
import pytest

from gpunn import benchmark


def test_flop_count_of_a_workload():
    w = benchmark.WORKLOADS["W2"]
    pairs = [(784, 256), (256, 128), (128, 10)]
    assert w.flops_per_sample == 6 * sum(i * o for i, o in pairs) - 2 * 784 * 256


def test_quick_run_prints_a_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert benchmark.main(["--quick", "--workloads", "W1", "--solvers", "sgd,adam",
                           "--samples", "256", "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "gpunn-numpy" in table and "scikit-learn" in table and "gemm-only" in table
    results = json.loads(out.read_text())
    impls = {r["impl"] for r in results["rows"]}
    assert {"gpunn-numpy", "scikit-learn", "gemm-only"} <= impls
    assert results["gemm_peak_gflops"] > 0
    for row in results["rows"]:
        assert row["min"] <= row["median"] <= row["max"]
    assert results["machine"]["threadpools"]
    # the bound takes turns with each solver's runs, not only the first solver's
    assert {r["solver"] for r in results["rows"] if r["impl"] == "gemm-only"} == {"sgd", "adam"}
    # every block has its probe's rate against the fastest block's; the probe is no row
    speeds = [r["machine_speed"] for r in results["rows"]]
    assert max(speeds) == 1.0 and min(speeds) > 0
    assert benchmark.PROBE not in impls and "machine" in table.splitlines()[1]


def test_table_divides_by_the_bound_measured_beside_the_same_solver():
    row = dict(workload="W2", min=1.0, max=1.0, gflops=1.0, pct_peak=1.0)
    rows = [dict(row, solver="sgd", impl="gemm-only", median=200.0),
            dict(row, solver="sgd", impl="gpunn-numpy", median=100.0),
            dict(row, solver="adam", impl="gemm-only", median=100.0),
            dict(row, solver="adam", impl="gpunn-numpy", median=80.0)]
    table = benchmark.format_table({"gemm_peak_gflops": 1.0, "rows": rows}).splitlines()
    ours = [line for line in table if "gpunn-numpy" in line]
    assert ours[0].endswith("0.50") and ours[1].endswith("0.80")


def test_cli_bench_delegates(capsys):
    from gpunn.cli import main

    assert main(["bench", "--quick", "--workloads", "W1", "--solvers", "adam", "--samples", "64",
                 "--no-sklearn"]) == 0
    assert "gpunn-numpy" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--workloads", "W2,W5"], "--workloads: unknown 'W5'; choose from W1,W2,W3,W4"),
    (["--solvers", "lbfgs"], "--solvers: unknown 'lbfgs'; choose from sgd,adam"),
    (["--repeats", "0"], "--repeats must be at least 1, not 0"),
    (["--samples", "-5"], "--samples must be at least 1, not -5"),
    (["--json", "no/such/folder/out.json"], "--json: folder no/such/folder does not exist"),
    (["--mnist", "no/such/folder"], "--mnist: MNIST folder not found"),
])
def test_a_bad_option_stops_the_run_before_any_timing(monkeypatch, capsys, argv, message):
    """One line and exit 2, before minutes of timing (a bad --json path used to lose the
    whole run at its end, a bad --mnist folder its first blocks)."""
    monkeypatch.setattr(benchmark, "run", lambda *a: pytest.fail("timing started"))
    with pytest.raises(SystemExit) as exit_info:
        benchmark.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_mnist_is_loaded_before_timing_and_timed_as_its_own_workload(monkeypatch, tmp_path, capsys):
    X = np.random.default_rng(0).random((64, 784), dtype=np.float32)
    y = np.arange(64) % 10
    monkeypatch.setattr(benchmark, "load_mnist", lambda folder: (X, y))
    out = tmp_path / "bench.json"
    assert benchmark.main(["--quick", "--workloads", "W1", "--solvers", "sgd", "--no-sklearn",
                           "--samples", "64", "--mnist", str(tmp_path), "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert {r["workload"] for r in rows} == {"W1", "MNIST"}


def test_implementations_take_turns_epoch_by_epoch():
    """Interleaving is what keeps the ratios fair on a noisy machine: pin the order."""
    calls = []
    epochs = {name: (lambda name=name: calls.append(name)) for name in ("gpunn", "torch")}
    rates = benchmark.time_interleaved(epochs, n_samples=10, repeats=2, settle=0.0)
    assert calls == ["gpunn", "torch"] * 3  # one warm-up each, then two rounds
    assert [len(r) for r in rates.values()] == [2, 2] and min(rates["gpunn"]) > 0


def test_each_timed_epoch_starts_after_a_pause(monkeypatch):
    """Another implementation's spinning threads must not run into an epoch's timing."""
    events = []
    monkeypatch.setattr(benchmark.time, "sleep", lambda seconds: events.append(seconds))
    epochs = {name: (lambda name=name: events.append(name)) for name in ("gpunn", "torch")}
    benchmark.time_interleaved(epochs, n_samples=10, repeats=2, settle=0.25)
    assert events == ["gpunn", "torch"] + [0.25, "gpunn", 0.25, "torch"] * 2


def test_blocks_in_a_slow_spell_are_flagged():
    row = dict(workload="W2", solver="adam", min=1.0, max=1.0, gflops=1.0, pct_peak=1.0)
    rows = [dict(row, impl="gemm-only", median=100.0, machine_speed=1.0),
            dict(row, solver="sgd", impl="gemm-only", median=70.0, machine_speed=0.7)]
    table = benchmark.format_table({"gemm_peak_gflops": 1.0, "rows": rows}).splitlines()
    assert table[3].endswith("1.00 ") and table[4].endswith("0.70*")
    assert table[-1].startswith("* machine:")
    rows[1]["machine_speed"] = 0.9
    assert not benchmark.format_table({"gemm_peak_gflops": 1.0, "rows": rows}).endswith(
        "block only.")


def test_gpu_rows_are_divided_by_the_gpu_bound():
    row = dict(workload="W2", solver="adam", min=1.0, max=1.0, gflops=1.0, pct_peak=1.0)
    rows = [dict(row, impl="gemm-only", median=100.0), dict(row, impl="gemm-only-cuda", median=1000.0),
            dict(row, impl="gpunn-numpy", median=50.0), dict(row, impl="gpunn-cupy", median=900.0),
            dict(row, impl="pytorch-cuda", median=600.0)]
    table = benchmark.format_table({"gemm_peak_gflops": 1.0, "gpu_gemm_peak_gflops": 9.0,
                                    "rows": rows})
    ends = {line.split()[2]: line.split()[-1] for line in table.splitlines()[3:]}
    assert ends["gpunn-numpy"] == "0.50"  # the CPU bound
    assert ends["gpunn-cupy"] == "0.90" and ends["pytorch-cuda"] == "0.60"  # the GPU's
    assert "9.0 GFLOP/s on the GPU" in table


def test_gemm_only_runner_and_peak_run_on_a_cupy_like_module(monkeypatch):
    """On a GPU machine the bound and the peak are cuBLAS's: the same code with CuPy as
    the array module, waiting for the device before the clock stops."""
    import fakecupy

    waits = []
    monkeypatch.setattr(fakecupy.cuda.runtime, "deviceSynchronize", lambda: waits.append(1))
    w = benchmark.WORKLOADS["W2"]
    X, _ = benchmark.make_data(w, n_samples=600)
    benchmark.gemm_only_runner(w, X, fakecupy)()
    assert waits == [1]  # once per epoch, after the last GEMM
    assert benchmark.gemm_peak_gflops(fakecupy, size=64, repeats=2) > 0
    assert len(waits) == 1 + 1 + 2  # the epoch, the warm-up multiply, two timed ones
