"""A progress bar over epochs, as a training callback (what ``gpunn train`` shows).

Pass ``callbacks=[ProgressBar(total=max_iter)]`` to an estimator for the same bar;
``verbose=True`` prints scikit-learn's per-iteration lines instead.
"""

from __future__ import annotations

import sys

from tqdm.auto import tqdm


class ProgressBar:
    """Show loss, validation score and samples/s after each epoch on stderr.

    Redraws at most ``mininterval`` seconds apart, so a fast epoch loop is never slowed
    by the terminal. Never asks to stop training.
    """

    def __init__(self, total: int, mininterval: float = 0.25):
        self._bar = tqdm(total=total, unit="epoch", file=sys.stderr, mininterval=mininterval,
                         dynamic_ncols=True, leave=True)

    def __call__(self, metrics: dict) -> None:
        postfix = {"loss": f"{metrics['loss']:.4g}",
                   "samples/s": f"{metrics['samples_per_second']:,.0f}"}
        if metrics.get("validation_score") is not None:
            postfix["val"] = f"{metrics['validation_score']:.4f}"
        self._bar.set_postfix(postfix, refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        self._bar.close()
