"""Data loaders: IDX (gzipped or not), CSV, NumPy files, bundled sets, and their errors."""

import gzip
import struct

import numpy as np
import pytest

from gpunn import datasets


def _write_idx(path, array, code=0x08):
    header = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    body = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as fh:
        fh.write(body)


@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_idx_round_trip(tmp_path, name):
    images = np.random.RandomState(0).randint(0, 256, size=(5, 4, 3)).astype(np.uint8)
    _write_idx(tmp_path / name, images)
    np.testing.assert_array_equal(datasets.load_idx(tmp_path / name), images)
    floats = np.linspace(-1, 1, 6).reshape(2, 3).astype(">f4")
    _write_idx(tmp_path / "f.idx", floats, code=0x0D)
    np.testing.assert_array_equal(datasets.load_idx(tmp_path / "f.idx"), floats.astype(np.float32))


def test_idx_errors(tmp_path):
    images = np.zeros((5, 4, 3), np.uint8)
    _write_idx(tmp_path / "ok.idx", images)
    raw = (tmp_path / "ok.idx").read_bytes()
    (tmp_path / "short.idx").write_bytes(raw[:-7])
    with pytest.raises(ValueError, match="truncated or corrupt.*shape \\(5, 4, 3\\)"):
        datasets.load_idx(tmp_path / "short.idx")
    (tmp_path / "magic.idx").write_bytes(b"\x01\x02" + raw[2:])
    with pytest.raises(ValueError, match="bad magic"):
        datasets.load_idx(tmp_path / "magic.idx")
    (tmp_path / "bad.idx.gz").write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="not a readable IDX"):
        datasets.load_idx(tmp_path / "bad.idx.gz")
    with pytest.raises(FileNotFoundError):
        datasets.load_idx(tmp_path / "missing.idx")


def test_mnist_folder_layout(tmp_path):
    _write_idx(tmp_path / "train-images.idx3-ubyte.gz", np.full((3, 2, 2), 255, np.uint8))
    _write_idx(tmp_path / "train-labels.idx1-ubyte.gz", np.array([1, 2, 3], np.uint8))
    X, y = datasets.load_mnist(tmp_path)
    assert X.shape == (3, 4) and X.dtype == np.float32 and X.max() == 1.0
    np.testing.assert_array_equal(y, [1, 2, 3])
    assert datasets.load(str(tmp_path))[0].shape == (3, 4)


def test_real_mnist(mnist_dir):
    X, y = datasets.load_mnist(mnist_dir, "t10k")
    assert X.shape == (10000, 784) and np.bincount(y).sum() == 10000


def test_csv_and_numpy_files(tmp_path):
    (tmp_path / "d.csv").write_text("a,b,label\n1,2,x\n3,4,y\n5,6,x\n")
    X, y = datasets.load(str(tmp_path / "d.csv"), target="label")
    assert X.shape == (3, 2) and list(y) == ["x", "y", "x"]
    with pytest.raises(ValueError, match="column 'nope' not in .*columns are a, b, label"):
        datasets.load(str(tmp_path / "d.csv"), target="nope")
    with pytest.raises(ValueError, match="non-numeric feature columns.*label"):
        datasets.load(str(tmp_path / "d.csv"), target="a")
    np.savez(tmp_path / "d.npz", X=np.ones((4, 2)), y=np.arange(4))
    assert datasets.load(str(tmp_path / "d.npz"))[0].shape == (4, 2)
    np.savez(tmp_path / "bad.npz", features=np.ones(2))
    with pytest.raises(ValueError, match="arrays named 'X' and 'y'"):
        datasets.load(str(tmp_path / "bad.npz"))
    np.save(tmp_path / "X.npy", np.ones((3, 2)))
    np.save(tmp_path / "y.npy", np.arange(3))
    assert datasets.load(str(tmp_path))[1].tolist() == [0, 1, 2]


def test_bundled_and_unknown():
    X, y = datasets.load("iris")
    assert X.shape == (150, 4)
    with pytest.raises(FileNotFoundError, match="neither a bundled data set"):
        datasets.load("no-such-thing")
