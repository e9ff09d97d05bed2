"""Learning-rate schedules of the SGD solver: constant, invscaling and adaptive.

They follow scikit-learn's ``SGDOptimizer``: the rate changes only between epochs, and
"adaptive" divides it by 5 each time the training stalls, stopping below 1e-6.
"""

from __future__ import annotations

SCHEDULES = ("constant", "invscaling", "adaptive")


class LearningRateSchedule:
    """The current learning rate, updated at the end of each epoch and on plateaus."""

    def __init__(self, kind: str, learning_rate_init: float, power_t: float = 0.5):
        if kind not in SCHEDULES:
            raise ValueError(f"unknown learning_rate {kind!r}; expected one of {SCHEDULES}")
        self.kind = kind
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.learning_rate = float(learning_rate_init)

    def epoch_end(self, samples_seen: int) -> None:
        """invscaling: ``lr = lr_init / (t + 1) ** power_t`` with t the samples seen so far."""
        if self.kind == "invscaling":
            self.learning_rate = float(self.learning_rate_init) / (samples_seen + 1) ** self.power_t

    def on_plateau(self) -> bool:
        """Training stalled: return True to stop, or lower the rate (adaptive) and go on."""
        if self.kind != "adaptive" or self.learning_rate <= 1e-6:
            return True
        self.learning_rate /= 5.0
        return False
