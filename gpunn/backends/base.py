"""The backend contract: every numeric operation the model, optimizers and trainer use.

The MLP, optimizers and trainer are written once against this interface and never do
array math themselves. ``NumpyBackend`` (CPU) is the reference implementation and the
test oracle; ``CupyBackend`` (NVIDIA GPUs) must pass the same conformance suite
(``tests/test_backend_conformance.py``).

Conventions shared by every op:

* Arrays are the backend's own (``numpy.ndarray`` or ``cupy.ndarray``), C-contiguous,
  float32 or float64 unless stated. All float operands of one call share one dtype.
* ``n`` is the batch (row) count, ``k`` a layer's width. Matrices are row-major
  ``(n, k)``; weights are ``(fan_in, fan_out)`` so a layer is ``z = a @ W + b``.
* Every op that produces an array writes into a caller-given ``out`` (which may alias
  an input where stated), so the training loop allocates nothing.
* Scalar results that the trainer needs (losses) are accumulated into a device-side
  ``acc`` buffer (1 element, float64), so the host waits for the device once per epoch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, NamedTuple

#: Hidden-layer activations (scikit-learn's names) and the output-only ``exp``.
ACTIVATIONS = ("identity", "logistic", "tanh", "relu", "exp")

#: Output activations, each paired with its canonical loss (see ``loss_grad``).
OUTPUT_LOSSES = {
    "softmax": "categorical cross-entropy (multiclass)",
    "logistic": "binary cross-entropy (binary and multilabel)",
    "identity": "half squared error (regression)",
    "exp": "half Poisson deviance (Poisson regression)",
}

#: Optimizer rules that ``fused_update`` implements, with the state buffers each needs.
UPDATE_RULES = {"sgd": ("velocity",), "adam": ("m", "v")}


class UpdateHyper(NamedTuple):
    """Scalars of one optimizer step, all computed on the host (no device sync).

    A NamedTuple: immutable and cheap to build once per step.

    The raw gradient ``grads`` holds unscaled sums (``A.T @ delta``, column sums of
    ``delta``). The effective gradient is ``g = (grads + l2 * params) / grad_scale`` on
    the leading ``n_weights`` entries (the weights: L2 never touches biases) and
    ``g = grads / grad_scale`` on the rest, exactly scikit-learn's arithmetic.

    ``penalty_scale`` is for the loss, not the step: when ``fused_update`` gets an
    ``acc``, it adds ``penalty_scale * sum(params[:n_weights]**2)`` there, read from the
    weights before the step (the trainer passes ``0.5 * l2`` times its loss scale).
    """

    lr: float  # learning rate of this step (Adam: already bias-corrected)
    grad_scale: float  # divisor of the raw gradient: batch size or sum of sample weights
    n_weights: int  # length of the leading weight span of the flat buffer
    l2: float = 0.0  # scikit-learn's ``alpha``
    momentum: float = 0.0  # sgd
    nesterov: bool = False  # sgd
    beta_1: float = 0.9  # adam
    beta_2: float = 0.999  # adam
    epsilon: float = 1e-8  # adam
    penalty_scale: float = 0.0  # L2 term of the loss, added to fused_update's acc


class Backend(ABC):
    """Numeric operations on one device. See the module docstring for conventions."""

    #: short name: "numpy" or "cupy"
    name: str = "abstract"

    # -- memory -------------------------------------------------------------------------
    def holds(self, x: Any) -> bool:
        """True when ``x`` is already one of this backend's device arrays (not NumPy's).

        The estimators take such arrays as they are (checked on the device, never copied
        to the host) and return predictions for them as device arrays.
        """
        return False

    @abstractmethod
    def asarray(self, x: Any, dtype: Any = None) -> Any:
        """Return ``x`` as a C-contiguous device array of ``dtype``; no copy if it is one."""

    @abstractmethod
    def to_numpy(self, x: Any) -> Any:
        """Return ``x`` as a host ``numpy.ndarray`` (a copy only when it lives elsewhere)."""

    @abstractmethod
    def empty(self, shape: tuple[int, ...] | int, dtype: Any) -> Any:
        """Uninitialised device array."""

    @abstractmethod
    def zeros(self, shape: tuple[int, ...] | int, dtype: Any) -> Any:
        """Zero-filled device array."""

    @abstractmethod
    def take_rows(self, x: Any, idx: Any, out: Any) -> Any:
        """Gather rows: ``out[:len(idx)] = x[idx]``; ``idx`` is a device int64 vector.

        ``x`` is ``(N, k)`` or ``(N,)``; returns the filled view ``out[:len(idx)]``.
        """

    # -- linear algebra -----------------------------------------------------------------
    @abstractmethod
    def matmul(
        self, a: Any, b: Any, out: Any, transpose_a: bool = False, transpose_b: bool = False
    ) -> Any:
        """``out = op(a) @ op(b)`` where ``op`` transposes when asked; returns ``out``.

        ``out`` must not alias ``a`` or ``b``; it may be a view into the flat gradient
        buffer (that is how weight gradients are written without temporaries).
        """

    @abstractmethod
    def col_sum(self, x: Any, out: Any) -> Any:
        """Column sums of ``x (n, k)`` into ``out (k,)``: the bias gradient."""

    # -- activations --------------------------------------------------------------------
    @abstractmethod
    def bias_act(self, z: Any, bias: Any, activation: str, out: Any) -> Any:
        """``out = f(z + bias)`` in one pass, ``bias`` broadcast over rows.

        ``activation`` is one of ``ACTIVATIONS``; ``out`` may alias ``z``.
        """

    @abstractmethod
    def act_grad(self, delta: Any, a: Any, activation: str, col_sums: Any = None) -> Any:
        """In place ``delta *= f'(z)``, with ``f'`` written in terms of the output ``a = f(z)``.

        identity: 1; logistic: ``a (1 - a)``; tanh: ``1 - a**2``; relu: ``a > 0``.
        Working from the output means the forward pass keeps no pre-activations. With
        ``col_sums``, also writes ``col_sum`` of the new delta there (the layer's bias
        gradient), in the same pass where the backend can.
        """

    @abstractmethod
    def sigmoid(self, z: Any, out: Any) -> Any:
        """``out = 1 / (1 + exp(-z))``, finite and in [0, 1] for every finite input."""

    @abstractmethod
    def softmax(self, z: Any, out: Any) -> Any:
        """Row-wise softmax of ``z (n, k)``, shifted by the row max so any finite input is safe."""

    # -- loss ---------------------------------------------------------------------------
    @abstractmethod
    def loss_grad(
        self,
        output: str,
        z: Any,
        y: Any,
        delta: Any,
        acc: Any,
        scale: float = 1.0,
        sample_weight: Any = None,
    ) -> Any:
        """Fused output activation, its canonical loss and the loss's gradient.

        ``output`` is a key of ``OUTPUT_LOSSES``; ``z (n, k)`` are the output layer's
        pre-activations (logits), ``y (n, k)`` the targets (one-hot / 0-1 for
        classifiers). Writes ``delta = (f(z) - y) * w[:, None]`` (``w`` = sample weights,
        1 when None) and adds ``scale * sum_i w_i * loss_i`` to ``acc[0]``.

        Per-sample losses follow scikit-learn exactly, quirks included: probabilities are
        clipped to ``[eps, 1 - eps]`` of the dtype before the log (so no ``log(0)``), and
        the squared error is averaged over the ``k`` outputs (``0.5 * mean_k (f - y)**2``).
        ``delta`` may not alias ``z``. Returns ``delta``.
        """

    @abstractmethod
    def sum_squares(self, x: Any, acc: Any, scale: float) -> Any:
        """``acc[0] += scale * sum(x**2)`` for a 1-D ``x``: the L2 penalty of the weights."""

    # -- optimizer ----------------------------------------------------------------------
    @abstractmethod
    def finish_grad(self, params: Any, grads: Any, hyper: UpdateHyper) -> Any:
        """In place: turn the raw flat gradient into the effective one (see ``UpdateHyper``).

        Used where the gradient itself is wanted (L-BFGS, gradient checks); the
        stochastic solvers get the same arithmetic fused into ``fused_update``.
        """

    @abstractmethod
    def fused_update(
        self,
        rule: str,
        params: Any,
        grads: Any,
        state: tuple[Any, ...],
        hyper: UpdateHyper,
        acc: Any = None,
    ) -> None:
        """One whole optimizer step over the flat buffers, in one pass.

        ``rule`` is a key of ``UPDATE_RULES`` and ``state`` holds its buffers (same
        length as ``params``). With ``g`` the effective gradient (``UpdateHyper``):

        * sgd: ``v = momentum * v - lr * g``; ``params += momentum * v - lr * g`` when
          ``nesterov`` else ``params += v``.
        * adam: ``m = b1 m + (1 - b1) g``; ``v = b2 v + (1 - b2) g*g``;
          ``params += -lr * m / (sqrt(v) + eps)``.

        The order of floating-point operations matches scikit-learn's optimizers, so
        float64 runs agree with scikit-learn to rounding. ``grads`` may be overwritten.

        With ``acc`` and a non-zero ``hyper.penalty_scale``, the same pass also adds
        ``penalty_scale * sum(w**2)`` of the weights before the step to ``acc[0]`` (as
        ``sum_squares`` would, without reading the weights a second time).
        """

    # -- checks and device --------------------------------------------------------------
    @abstractmethod
    def all_finite(self, x: Any) -> bool:
        """True when no element of ``x`` is NaN or infinite (one host sync)."""

    @abstractmethod
    def read_scalar(self, acc: Any) -> float:
        """``float(acc[0])``: the one host read per epoch."""

    @abstractmethod
    def synchronize(self) -> None:
        """Block until all queued device work is done (timing, tests)."""

    @abstractmethod
    def device_info(self) -> dict[str, Any]:
        """Human-readable facts about the device: name, memory, library versions."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
