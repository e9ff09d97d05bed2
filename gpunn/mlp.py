"""The multi-layer perceptron: one flat parameter buffer, forward and backward passes.

Layer ``i`` computes ``a[i+1] = f(a[i] @ W[i] + b[i])`` (the notes' matrix form, one row per
example). All weights, then all biases, live in ONE contiguous buffer in scikit-learn's
packing order (``W0, W1, ..., b0, b1, ...``); ``coefs`` and ``intercepts`` are views into
it, and the gradient buffer has the same layout. So an optimizer step is one pass over one
buffer, L2 decay covers exactly the leading ``n_weights`` entries, and L-BFGS works on the
buffer as it is. Every array operation goes through the backend.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from .backends.base import Backend


def training_flops(layer_units: Sequence[int]) -> int:
    """Floating-point operations of one training step, per example: forward 2 x in x out a
    layer, backward 4 x in x out, less the input gradient no layer needs."""
    pairs = list(zip(layer_units[:-1], layer_units[1:]))
    return 6 * sum(i * o for i, o in pairs) - 2 * pairs[0][0] * pairs[0][1]


class Workspace:
    """Activations and deltas for batches of up to ``max_rows`` rows, allocated once.

    A smaller batch (the last of an epoch) uses leading-row views of the same buffers.
    """

    def __init__(self, backend: Backend, layer_units: Sequence[int], max_rows: int, dtype):
        self.max_rows = max_rows
        self.acts = [backend.empty((max_rows, k), dtype) for k in layer_units[1:]]
        self.deltas = [backend.empty((max_rows, k), dtype) for k in layer_units[1:]]

    def rows(self, n: int) -> tuple[list, list]:
        """Activation and delta buffers for a batch of ``n`` rows."""
        if n == self.max_rows:
            return self.acts, self.deltas
        return [a[:n] for a in self.acts], [d[:n] for d in self.deltas]


class MLP:
    """A feed-forward network of ``layer_units`` (inputs, hidden..., outputs) on a backend.

    Parameters
    ----------
    layer_units : sizes of every layer, input first.
    activation : hidden-layer activation ("identity", "logistic", "tanh", "relu").
    output : output activation, which also fixes the loss ("softmax", "logistic",
        "identity", "exp"; see ``gpunn.backends.base.OUTPUT_LOSSES``).
    """

    def __init__(
        self, layer_units: Sequence[int], activation: str, output: str, backend: Backend, dtype
    ):
        self.layer_units = [int(k) for k in layer_units]
        self.activation = activation
        self.output = output
        self.backend = backend
        self.dtype = np.dtype(dtype)
        shapes = list(zip(self.layer_units[:-1], self.layer_units[1:]))
        self.n_weights = sum(i * o for i, o in shapes)
        self.n_params = self.n_weights + sum(o for _, o in shapes)
        self.params = backend.zeros(self.n_params, self.dtype)
        self.grads = backend.zeros(self.n_params, self.dtype)
        self.coefs, self.intercepts = _layer_views(self.params, shapes)
        self.coef_grads, self.intercept_grads = _layer_views(self.grads, shapes)
        self._buffers: dict[str, Any] = {}

    @property
    def n_layers(self) -> int:
        return len(self.layer_units)

    # -- weights ------------------------------------------------------------------------
    def init_weights(self, random_state: np.random.RandomState) -> None:
        """Glorot-uniform weights and biases drawn exactly as scikit-learn draws them.

        Per layer, W then b from ``uniform(-bound, bound)`` with
        ``bound = sqrt(factor / (fan_in + fan_out))``, factor 2 for logistic units and 6
        otherwise, in float64 and then cast: the same ``random_state`` gives the same
        network as ``sklearn.neural_network``.
        """
        factor = 2.0 if self.activation == "logistic" else 6.0
        coefs, intercepts = [], []
        for fan_in, fan_out in zip(self.layer_units[:-1], self.layer_units[1:]):
            bound = math.sqrt(factor / (fan_in + fan_out))
            coefs.append(random_state.uniform(-bound, bound, (fan_in, fan_out)))
            intercepts.append(random_state.uniform(-bound, bound, fan_out))
        self.set_weights(coefs, intercepts)

    def set_weights(self, coefs: Sequence[Any], intercepts: Sequence[Any]) -> None:
        """Copy per-layer arrays into the flat buffer (skipping arrays that are its views)."""
        for dst, src in zip(self.coefs + self.intercepts, list(coefs) + list(intercepts)):
            if src is not dst:
                if tuple(np.shape(src)) != tuple(dst.shape):
                    raise ValueError(
                        f"weight array of shape {np.shape(src)} does not fit a layer of "
                        f"shape {tuple(dst.shape)}"
                    )
                dst[...] = self.backend.asarray(src, self.dtype)

    def host_weights(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per-layer weights as NumPy arrays: views of the buffer on the CPU, copies otherwise."""
        flat = self.backend.to_numpy(self.params)
        shapes = list(zip(self.layer_units[:-1], self.layer_units[1:]))
        return _layer_views(flat, shapes)

    # -- training buffers ---------------------------------------------------------------
    def buffer(self, name: str, shape: tuple[int, ...], dtype=None) -> Any:
        """A training buffer kept from one call to the next (contents undefined).

        A stream of ``partial_fit`` calls then allocates nothing after the first, and the
        compiled CPU kernels find the same arrays again (``CpuKernels._pointers``).
        ``release_buffers`` frees them.
        """
        dtype = self.dtype if dtype is None else np.dtype(dtype)
        return self._kept(name, lambda buf: tuple(buf.shape) == tuple(shape) and buf.dtype == dtype,
                          lambda: self.backend.empty(shape, dtype))

    def workspace(self, max_rows: int) -> Workspace:
        """The kept ``Workspace`` for batches of up to ``max_rows`` rows."""
        return self._kept("workspace", lambda ws: ws.max_rows == max_rows,
                          lambda: Workspace(self.backend, self.layer_units, max_rows, self.dtype))

    def _kept(self, name: str, fits: Callable[[Any], bool], make: Callable[[], Any]) -> Any:
        """The kept object ``name`` if it ``fits``, else a new one from ``make``, kept."""
        kept = self._buffers.get(name)
        if kept is None or not fits(kept):
            kept = self._buffers[name] = make()
        return kept

    def release_buffers(self) -> None:
        """Free the kept training buffers (a finished ``fit`` needs none of them)."""
        self._buffers.clear()

    # -- passes -------------------------------------------------------------------------
    def forward(self, x: Any, acts: list) -> Any:
        """Forward pass of a batch ``x`` into ``acts``; returns the output logits ``acts[-1]``.

        Hidden layers hold activations; the last buffer holds pre-activations, since the
        output activation is fused with the loss (``Backend.loss_grad``).
        """
        be = self.backend
        a = x
        last = len(self.coefs) - 1
        for i, (w, b) in enumerate(zip(self.coefs, self.intercepts)):
            be.matmul(a, w, out=acts[i])
            be.bias_act(acts[i], b, "identity" if i == last else self.activation, out=acts[i])
            a = acts[i]
        return a

    def loss_grad(
        self,
        x: Any,
        y: Any,
        workspace: Workspace,
        acc: Any,
        scale: float = 1.0,
        sample_weight: Any = None,
    ) -> None:
        """Forward and backward pass of one batch: raw gradients into ``self.grads``.

        Adds ``scale * sum_i w_i loss_i`` to ``acc[0]``. The gradients are unscaled sums
        (``a.T @ delta``, column sums of ``delta``); the optimizer divides them by the
        batch weight and adds L2 in its fused update (``Backend.fused_update``).
        """
        be = self.backend
        acts, deltas = workspace.rows(x.shape[0])
        logits = self.forward(x, acts)
        be.loss_grad(self.output, logits, y, deltas[-1], acc, scale, sample_weight)
        be.col_sum(deltas[-1], out=self.intercept_grads[-1])
        for i in range(len(self.coefs) - 1, -1, -1):
            a_in = x if i == 0 else acts[i - 1]
            be.matmul(a_in, deltas[i], out=self.coef_grads[i], transpose_a=True)
            if i > 0:  # the hidden layer's delta, and its bias gradient in the same pass
                be.matmul(deltas[i], self.coefs[i], out=deltas[i - 1], transpose_b=True)
                be.act_grad(deltas[i - 1], acts[i - 1], self.activation,
                            col_sums=self.intercept_grads[i - 1])

    def predict_output(self, x: Any) -> Any:
        """Output-layer activations (probabilities or predictions) for the rows of ``x``."""
        workspace = Workspace(self.backend, self.layer_units, x.shape[0], self.dtype)
        return self.activate_output(self.forward(x, workspace.acts))

    def activate_output(self, logits: Any) -> Any:
        """Apply the output activation to the logits in place (softmax, logistic, ...)."""
        if self.output == "softmax":
            return self.backend.softmax(logits, out=logits)
        return _activate(self.backend, logits, self.output)


def _activate(backend: Backend, z: Any, activation: str) -> Any:
    """Elementwise output activation in place, for prediction (the training path fuses it)."""
    if activation == "logistic":
        return backend.sigmoid(z, out=z)
    if activation == "identity":
        return z
    zero = backend.zeros(z.shape[1], z.dtype)
    return backend.bias_act(z, zero, activation, out=z)


def _layer_views(flat: Any, shapes: list[tuple[int, int]]) -> tuple[list, list]:
    """Per-layer ``(fan_in, fan_out)`` weight views and bias views of a flat buffer."""
    coefs, intercepts, start = [], [], 0
    for fan_in, fan_out in shapes:
        coefs.append(flat[start : start + fan_in * fan_out].reshape(fan_in, fan_out))
        start += fan_in * fan_out
    for _, fan_out in shapes:
        intercepts.append(flat[start : start + fan_out])
        start += fan_out
    return coefs, intercepts
