"""CuPy's direct cuBLAS path (``CublasGemm``) checked without a GPU.

cuBLAS is column-major; ``CublasGemm`` multiplies row-major arrays by handing cuBLAS the
operands swapped. Here a NumPy GEMM with cuBLAS's exact contract (pointers, leading
dimensions, column-major storage, host alpha/beta) stands in for sgemm/dgemm, so a wrong
swap, transpose flag or leading dimension fails on any machine. On a GPU the backend
conformance suite checks the real thing.
"""

import ctypes
from types import SimpleNamespace

import numpy as np
import pytest

from gpunn.backends.cupy_backend import CublasGemm


class DeviceLike(np.ndarray):
    """Host memory that answers ``.data.ptr`` as a CuPy array does."""

    @property
    def data(self):
        return SimpleNamespace(ptr=self.ctypes.data)


class ColumnMajorBlas:
    """``sgemm``/``dgemm`` with cuBLAS's signature, over the arrays registered here."""

    def __init__(self, *arrays):
        self.memory = {a.ctypes.data: a.reshape(-1) for a in arrays}
        self.calls = 0

    def _matrix(self, ptr, ld, n_cols, dtype):
        flat = self.memory[ptr]
        assert flat.dtype == dtype and ld * n_cols <= flat.size, "cuBLAS would read out of bounds"
        return flat[: ld * n_cols].reshape(n_cols, ld).T  # element (i, j) at i + j * ld

    def _gemm(self, dtype, handle, transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc):
        self.calls += 1
        scalar = lambda ptr: np.frombuffer(  # noqa: E731 - alpha, beta: host pointers
            (ctypes.c_char * dtype.itemsize).from_address(ptr), dtype)[0]
        a = self._matrix(A, lda, k if transa == 0 else m, dtype)
        b = self._matrix(B, ldb, n if transb == 0 else k, dtype)
        op_a = a[:m, :k] if transa == 0 else a[:k, :m].T
        op_b = b[:k, :n] if transb == 0 else b[:n, :k].T
        c = self._matrix(C, ldc, n, dtype)
        product = scalar(alpha) * (op_a @ op_b)
        # BLAS reads no C when beta is 0 (so NaN in the output buffer stays out)
        c[:m, :n] = product if scalar(beta) == 0 else product + scalar(beta) * c[:m, :n]

    def sgemm(self, *args):
        self._gemm(np.dtype(np.float32), *args)

    def dgemm(self, *args):
        self._gemm(np.dtype(np.float64), *args)


def _gemm_over(blas: ColumnMajorBlas) -> CublasGemm:
    """A ``CublasGemm`` on ``blas``, with a CuPy stand-in that hands out handle 0."""
    handle = SimpleNamespace(get_cublas_handle=lambda: 0)
    return CublasGemm(SimpleNamespace(cuda=SimpleNamespace(device=handle)), cublas=blas)


def _operands(dtype, ta, tb, m=7, k=5, n=3):
    rng = np.random.RandomState(0)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype).view(DeviceLike)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype).view(DeviceLike)
    out = np.full((m, n), np.nan, dtype).view(DeviceLike)
    return a, b, out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
def test_row_major_product_through_a_column_major_gemm(dtype, ta, tb):
    a, b, out = _operands(dtype, ta, tb)
    blas = ColumnMajorBlas(a, b, out)
    gemm = _gemm_over(blas)
    assert gemm(a, b, out, ta, tb) is True and blas.calls == 1
    plain = lambda x: np.asarray(x).view(np.ndarray)  # noqa: E731
    expected = (plain(a).T if ta else plain(a)) @ (plain(b).T if tb else plain(b))
    np.testing.assert_allclose(plain(out), expected, rtol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("case", ["strided", "mixed dtype", "wrong out shape", "empty"])
def test_leaves_to_cupy_what_it_does_not_handle(case):
    """Operands outside the fast path are refused (False), never multiplied wrongly."""
    a, b, out = _operands(np.float32, False, False)
    if case == "strided":
        a = np.asarray(a)[:, ::2].view(DeviceLike)
        b = b[:3]
    elif case == "mixed dtype":
        b = b.astype(np.float64).view(DeviceLike)
    elif case == "wrong out shape":
        out = out[:, :2]
    else:
        a, b = a[:, :0], b[:0]
    blas = ColumnMajorBlas(a, b, out)
    gemm = _gemm_over(blas)
    assert gemm(a, b, out, False, False) is False and blas.calls == 0
