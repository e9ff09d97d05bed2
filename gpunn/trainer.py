"""The training loops: mini-batch gradient descent (all three of the notes' modes) and L-BFGS.

One loop covers the notes' three modes of gradient descent by its batch size: the whole
data set (full-batch gradient descent), one example (stochastic gradient descent) or
``1 < n < N`` examples (mini-batch). Epochs, shuffles, early stopping and the
bookkeeping follow scikit-learn's ``_fit_stochastic`` step for step, so the same
``random_state`` gives the same model. The data goes to the device once; each epoch's
row order is drawn on the host and uploaded once; the host reads one number (the
epoch's loss) per epoch.
"""

from __future__ import annotations

import time
import warnings
from typing import Any, Callable

import numpy as np
import scipy.optimize
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils.optimize import _check_optimize_result

from .backends.base import UpdateHyper
from .mlp import MLP, Workspace


class DivergenceError(ValueError):
    """Training produced a non-finite loss; the estimator is left as it was before the call."""


def resolve_batch_size(batch_size: Any, n_samples: int) -> int:
    """``"auto"`` -> min(200, n); ``"full"`` -> n; larger than n -> n (with scikit-learn's warning)."""
    if batch_size == "auto":
        return min(200, n_samples)
    if batch_size == "full":
        return n_samples
    if batch_size > n_samples:
        warnings.warn(
            "Got `batch_size` less than 1 or larger than sample size. It is going to be clipped"
        )
    return int(np.clip(batch_size, 1, n_samples))


class _Validation:
    """The held-out split for early stopping: scored (and its loss taken) once per epoch."""

    def __init__(self, est, model: MLP, X, Y, sample_weight, idx):
        be = model.backend
        self.est, self.model = est, model
        self.x = be.asarray(X[idx], model.dtype)
        self.y = be.asarray(Y[idx], model.dtype)
        self.targets = est._decode_targets(Y[idx])
        self.sample_weight = None if sample_weight is None else sample_weight[idx]
        self.sw_dev = None if sample_weight is None else be.asarray(self.sample_weight, model.dtype)
        weight = len(idx) if sample_weight is None else float(self.sample_weight.sum())
        self.loss_scale = 1.0 / weight
        self.workspace = Workspace(be, model.layer_units, len(idx), model.dtype)
        self.acc = be.zeros(1, np.float64)

    def evaluate(self) -> tuple[float, float]:
        """(score, mean loss) of the current weights on the validation rows."""
        be, model = self.model.backend, self.model
        self.acc[0] = 0
        logits = model.forward(self.x, self.workspace.acts)
        be.loss_grad(model.output, logits, self.y, self.workspace.deltas[-1], self.acc,
                     self.loss_scale, self.sw_dev)
        output = be.to_numpy(model.activate_output(logits))
        score = self.est._score_output(output, self.targets, self.sample_weight)
        return score, be.read_scalar(self.acc)


def fit_stochastic(
    est,
    model: MLP,
    optimizer,
    X: np.ndarray,
    Y: np.ndarray,
    sample_weight: np.ndarray | None,
    random_state: np.random.RandomState,
    incremental: bool,
    callbacks: list[Callable[[dict], Any]],
    resume: bool = False,
) -> None:
    """Run the epochs of the ``sgd``/``adam`` solvers, writing fitted attributes onto ``est``.

    With ``resume`` the run continues an interrupted one (``est.resume``): the
    early-stopping split, the running shuffle order and the epoch counter are taken from
    ``est`` instead of being drawn anew, so the result equals an uninterrupted run.
    """
    be = model.backend
    if est.early_stopping and incremental:
        raise ValueError("partial_fit does not support early_stopping=True")
    validation = None
    train_idx = None
    if resume:
        train_idx, val_idx = est._split
    elif est.early_stopping:
        stratify = Y if (est._is_classifier and est.n_outputs_ == 1) else None
        train_idx, val_idx = train_test_split(
            np.arange(X.shape[0]), random_state=random_state,
            test_size=est.validation_fraction, stratify=stratify,
        )
        if len(val_idx) < 2:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' "
                "or the size of your dataset."
            )
    else:
        val_idx = None
    est._split = (train_idx, val_idx)
    if val_idx is not None:
        validation = _Validation(est, model, X, Y, sample_weight, val_idx)

    n_train = X.shape[0] if train_idx is None else len(train_idx)
    batch_size = resolve_batch_size(est.batch_size, n_train)
    starts = range(0, n_train, batch_size)
    x_dev = be.asarray(X, model.dtype)
    y_dev = be.asarray(Y, model.dtype)
    sw_dev = None if sample_weight is None else be.asarray(sample_weight, model.dtype)
    gather = est.shuffle or train_idx is not None
    if gather:
        x_buf = model.buffer("x", (batch_size, X.shape[1]))
        y_buf = model.buffer("y", (batch_size, Y.shape[1]))
        sw_buf = None if sw_dev is None else model.buffer("sample_weight", (batch_size,))
    workspace = model.workspace(batch_size)
    acc = model.buffer("acc", (1,), np.float64)
    alpha = float(est.alpha)

    if not resume:
        est._sample_idx = np.arange(n_train, dtype=int)
        est.n_iter_ = 0
    est._rng = random_state
    while est.n_iter_ < est.max_iter:
        if est.shuffle:
            # scikit-learn's shuffle, the same draws (arange, then RandomState.shuffle)
            # without its input checks, which cost 0.1 ms a call
            est._sample_idx = est._sample_idx[random_state.permutation(n_train)]
        sample_idx = est._sample_idx
        order = sample_idx if train_idx is None else train_idx[sample_idx]
        order_dev = be.asarray(order, np.int64) if gather else None
        if sample_weight is None:
            batch_weights = [min(batch_size, n_train - s) for s in starts]
        else:
            batch_weights = np.add.reduceat(sample_weight[order], list(starts)).tolist()
        acc[0] = 0
        tic = time.perf_counter()
        for start, weight in zip(starts, batch_weights):
            stop = min(start + batch_size, n_train)
            if gather:
                rows = order_dev[start:stop]
                xb = be.take_rows(x_dev, rows, x_buf)
                yb = be.take_rows(y_dev, rows, y_buf)
                swb = None if sw_dev is None else be.take_rows(sw_dev, rows, sw_buf)
            else:
                xb, yb = x_dev[start:stop], y_dev[start:stop]
                swb = None if sw_dev is None else sw_dev[start:stop]
            # scikit-learn accumulates batch_mean_loss * batch_size: scale = size / weight
            scale = (stop - start) / weight
            model.loss_grad(xb, yb, workspace, acc, scale, swb)
            # the step adds the loss's L2 term, 0.5 alpha sum(w^2), read before it updates
            optimizer.step(model.params, model.grads, weight, alpha, model.n_weights, acc,
                           0.5 * alpha * scale)
        # 0 * sum(w**2) is NaN when any weight is non-finite: one read checks loss and weights.
        be.sum_squares(model.params, acc, 0.0)
        loss = np.float64(be.read_scalar(acc) / n_train)  # scikit-learn's loss_ type
        seconds = time.perf_counter() - tic

        if not np.isfinite(loss):
            raise DivergenceError(
                f"Training diverged in epoch {est.n_iter_ + 1}: the loss became {loss}. "
                f"The estimator is left as it was before this call. Lower "
                f"learning_rate_init (now {est.learning_rate_init}) or scale the features."
            )
        est.n_iter_ += 1
        est.loss_ = loss
        est.t_ += n_train
        est.loss_curve_.append(loss)
        if est.verbose:
            print("Iteration %d, loss = %.8f" % (est.n_iter_, loss))
        val_score = val_loss = None
        if validation is not None:
            val_score, val_loss = validation.evaluate()
            est.validation_loss_curve_.append(val_loss)
        _update_no_improvement_count(est, model, val_score)
        optimizer.epoch_end(est.t_)
        plateau_stop = False
        if est._no_improvement_count > est.n_iter_no_change:
            plateau_stop = optimizer.on_plateau()
            if est.verbose:
                print(_plateau_message(est, optimizer, plateau_stop))
            if not plateau_stop:
                est._no_improvement_count = 0
        # callbacks see the epoch's final state (a checkpoint saved here resumes exactly)
        metrics = {
            "epoch": est.n_iter_, "loss": loss, "validation_score": val_score,
            "validation_loss": val_loss, "samples_per_second": n_train / max(seconds, 1e-12),
            "learning_rate": optimizer.learning_rate, "n_samples": n_train, "estimator": est,
        }
        stop_requested = [cb(metrics) for cb in callbacks]
        if plateau_stop or any(flag is True for flag in stop_requested):
            break
        if incremental:
            break
        if est.n_iter_ == est.max_iter:
            warnings.warn(
                "Stochastic Optimizer: Maximum iterations (%d) reached and the "
                "optimization hasn't converged yet." % est.max_iter,
                ConvergenceWarning,
            )
    if validation is not None:
        model.params[...] = est._best_params


def _update_no_improvement_count(est, model: MLP, val_score: float | None) -> None:
    """scikit-learn's plateau counter: on the validation score, else on the training loss."""
    if val_score is not None:
        est.validation_scores_.append(val_score)
        if est.verbose:
            print("Validation score: %f" % val_score)
        if val_score < est.best_validation_score_ + est.tol:
            est._no_improvement_count += 1
        else:
            est._no_improvement_count = 0
        if val_score > est.best_validation_score_:
            est.best_validation_score_ = val_score
            est._best_params[...] = model.params
    else:
        if est.loss_curve_[-1] > est.best_loss_ - est.tol:
            est._no_improvement_count += 1
        else:
            est._no_improvement_count = 0
        if est.loss_curve_[-1] < est.best_loss_:
            est.best_loss_ = est.loss_curve_[-1]


def _plateau_message(est, optimizer, stopping: bool) -> str:
    """scikit-learn's words (``verbose``) when training stalls: stopping, or a lower rate."""
    message = "%s did not improve more than tol=%f for %d consecutive epochs." % (
        "Validation score" if est.early_stopping else "Training loss", est.tol,
        est.n_iter_no_change)
    if not stopping:
        return message + " Setting learning rate to %f" % optimizer.learning_rate
    if optimizer.schedule.kind == "adaptive":
        return message + " Learning rate too small. Stopping."
    return message + " Stopping."


def fit_lbfgs(est, model: MLP, X: np.ndarray, Y: np.ndarray, sample_weight) -> None:
    """Full-batch L-BFGS (SciPy) on the flat parameter buffer, as scikit-learn runs it."""
    be = model.backend
    x_dev = be.asarray(X, model.dtype)
    y_dev = be.asarray(Y, model.dtype)
    sw_dev = None if sample_weight is None else be.asarray(sample_weight, model.dtype)
    weight = X.shape[0] if sample_weight is None else float(sample_weight.sum())
    workspace = Workspace(be, model.layer_units, X.shape[0], model.dtype)
    acc = be.zeros(1, np.float64)
    hyper = UpdateHyper(lr=0.0, grad_scale=weight, l2=float(est.alpha), n_weights=model.n_weights)

    def loss_and_grad(packed: np.ndarray) -> tuple[float, np.ndarray]:
        model.params[...] = be.asarray(packed, model.dtype)
        acc[0] = 0
        model.loss_grad(x_dev, y_dev, workspace, acc, 1.0 / weight, sw_dev)
        be.sum_squares(model.params[: model.n_weights], acc, 0.5 * est.alpha / weight)
        be.finish_grad(model.params, model.grads, hyper)
        return be.read_scalar(acc), be.to_numpy(model.grads).astype(np.float64)

    result = scipy.optimize.minimize(
        loss_and_grad,
        be.to_numpy(model.params).astype(np.float64),
        method="L-BFGS-B",
        jac=True,
        options={"maxfun": est.max_fun, "maxiter": est.max_iter, "gtol": est.tol},
    )
    est.n_iter_ = _check_optimize_result("lbfgs", result, est.max_iter)
    est.loss_ = np.float64(result.fun)  # scikit-learn's type
    model.params[...] = be.asarray(result.x, model.dtype)
    if not be.all_finite(model.params) or not np.isfinite(est.loss_):
        raise DivergenceError(
            "L-BFGS produced non-finite weights. The input data may contain large values "
            "and need to be preprocessed (e.g. StandardScaler)."
        )
