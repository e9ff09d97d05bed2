"""Checkpoints survive SIGKILL at any moment, even mid-save, and resume exactly."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import gpunn

TRAIN = textwrap.dedent("""
    import sys, numpy as np, gpunn
    from sklearn.datasets import make_classification
    X, y = make_classification(400, 20, n_informative=8, n_classes=3, random_state=0)
    est = gpunn.MLPClassifier((64, 32), max_iter=int(sys.argv[2]), random_state=0,
                              n_iter_no_change=1000, batch_size=8, backend="numpy",
                              callbacks=[gpunn.Checkpoint(sys.argv[1], every=1)])
    est.fit(X, y)
    if len(sys.argv) > 3:
        np.save(sys.argv[3], np.concatenate([c.ravel() for c in est.coefs_ + est.intercepts_]))
""")


def _flat(est):
    return np.concatenate([c.ravel() for c in est.coefs_ + est.intercepts_])


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_sigkill_never_leaves_a_broken_file_and_resume_is_exact(tmp_path):
    from sklearn.datasets import make_classification

    X, y = make_classification(400, 20, n_informative=8, n_classes=3, random_state=0)
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    reference = tmp_path / "reference.npy"
    subprocess.run([sys.executable, str(script), str(tmp_path / "ref.npz"), "30", str(reference)],
                   check=True, timeout=120)
    expected = np.load(reference)

    rng = np.random.RandomState(0)
    resumed_any = 0
    for trial in range(6):
        ckpt = tmp_path / f"run{trial}.npz"
        proc = subprocess.Popen([sys.executable, str(script), str(ckpt), "30"])
        # wait for the first checkpoint, then kill at a random moment (saves happen every epoch)
        deadline = time.time() + 60
        while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.01)
        time.sleep(rng.uniform(0, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        leftovers = [p for p in os.listdir(tmp_path) if p.startswith(f".run{trial}.npz.")]
        model = gpunn.load(ckpt)  # always complete and loadable
        assert 1 <= model.n_iter_ <= 30
        model.resume(X, y)
        np.testing.assert_array_equal(_flat(model), expected)
        resumed_any += 1
        for p in leftovers:  # a temporary file from a killed save is never the model
            assert not (tmp_path / p).samefile(ckpt)
    assert resumed_any == 6


def test_a_bad_checkpoint_path_or_interval_is_refused_before_training(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        gpunn.Checkpoint(tmp_path / "no" / "such" / "run.npz")
    with pytest.raises(IsADirectoryError):
        gpunn.Checkpoint(tmp_path)
    for every in (0, 2.5, "3", True):
        with pytest.raises(ValueError, match="positive whole number"):
            gpunn.Checkpoint(tmp_path / "run.npz", every=every)
    assert gpunn.Checkpoint(tmp_path / "run.npz", every=np.int64(3)).every == 3
