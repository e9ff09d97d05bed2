"""Optimizers, in order of increasing complexity: SGD (with momentum, Nesterov), Adam.

Each keeps its state in flat buffers laid out like the parameters and takes a whole
step in one ``Backend.fused_update`` call: one pass (one kernel launch on a GPU) over
every parameter of the model, L2 decay and gradient scaling included, and the loss's L2
term read on the way. The scalars of a step are computed on the host, so a step never
waits for the device.
"""

from __future__ import annotations

import math
from typing import Any

from .backends.base import Backend, UpdateHyper
from .schedules import LearningRateSchedule


class SGD:
    """Stochastic gradient descent; ``momentum=0`` gives the plain ``w -= lr * g`` of the notes."""

    rule = "sgd"

    def __init__(
        self,
        backend: Backend,
        params: Any,
        schedule: LearningRateSchedule,
        momentum: float = 0.9,
        nesterov: bool = True,
    ):
        self.backend = backend
        self.schedule = schedule
        self.momentum = momentum
        self.nesterov = nesterov
        self.state = (backend.zeros(params.shape, params.dtype),)

    @property
    def learning_rate(self) -> float:
        return self.schedule.learning_rate

    def _hyper(self, **common) -> UpdateHyper:
        return UpdateHyper(
            lr=self.learning_rate, momentum=self.momentum, nesterov=self.nesterov, **common
        )

    def step(
        self,
        params: Any,
        grads: Any,
        grad_scale: float,
        l2: float,
        n_weights: int,
        acc: Any = None,
        penalty_scale: float = 0.0,
    ) -> None:
        """Apply one update from the raw gradient sums in ``grads`` (overwritten).

        With ``acc``, the same pass adds ``penalty_scale * sum(w**2)`` of the weights
        before the update to it (the L2 term of the batch loss).
        """
        hyper = self._hyper(grad_scale=grad_scale, l2=l2, n_weights=n_weights,
                            penalty_scale=penalty_scale)
        self.backend.fused_update(self.rule, params, grads, self.state, hyper, acc)

    def epoch_end(self, samples_seen: int) -> None:
        self.schedule.epoch_end(samples_seen)

    def on_plateau(self) -> bool:
        """True to stop training; False when the schedule lowered the rate instead."""
        return self.schedule.on_plateau()


class Adam(SGD):
    """Adam (Kingma and Ba, 2014) with scikit-learn's bias correction folded into the rate."""

    rule = "adam"

    def __init__(
        self,
        backend: Backend,
        params: Any,
        learning_rate_init: float = 1e-3,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
    ):
        self.backend = backend
        self.schedule = LearningRateSchedule("constant", learning_rate_init)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.t = 0
        self.state = tuple(backend.zeros(params.shape, params.dtype) for _ in range(2))

    @property
    def learning_rate(self) -> float:
        """Bias-corrected rate of step ``t``: ``lr sqrt(1 - b2^t) / (1 - b1^t)``."""
        t = max(self.t, 1)
        lr = self.schedule.learning_rate_init
        return lr * math.sqrt(1 - self.beta_2**t) / (1 - self.beta_1**t)

    def _hyper(self, **common) -> UpdateHyper:
        self.t += 1
        return UpdateHyper(
            lr=self.learning_rate,
            beta_1=self.beta_1,
            beta_2=self.beta_2,
            epsilon=self.epsilon,
            **common,
        )
