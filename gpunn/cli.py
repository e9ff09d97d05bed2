"""The ``gpunn`` command: train, predict, evaluate, info, bench.

User mistakes (a missing file, a bad column, a bad option, a model file that does not
load, an output path that cannot be written) end in one line on stderr and exit status
2, never a traceback. Output paths are checked before any training starts.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from typing import NoReturn, Sequence

import numpy as np

from . import datasets
from .backends import BACKEND_NAMES, BackendUnavailableError
from .io import check_output_path
from .progress import ProgressBar


class UserError(Exception):
    """A mistake the user can fix; printed as one line."""


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, not the whole usage block (exit 2).

    ``add_subparsers`` makes the subcommands' parsers of this class too.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _hidden(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 256,128; got {text!r}") from None
    if any(s <= 0 for s in sizes):
        raise argparse.ArgumentTypeError(f"hidden sizes must be positive; got {text!r}")
    return sizes


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="gpunn", description=__doc__.splitlines()[0].replace("``", ""))
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train an MLP and report its scores and speed")
    train.add_argument("data", help=f"bundled name ({', '.join(datasets.BUNDLED)}), a .csv, "
                       ".npz/.npy, or an MNIST-style IDX folder")
    train.add_argument("--target", help="label column of a CSV (default: the last column)")
    train.add_argument("--task", choices=["auto", "classify", "regress"], default="auto")
    train.add_argument("--hidden", type=_hidden, default=(100,), help="hidden layer sizes, e.g. 256,128")
    train.add_argument("--activation", default="relu", choices=["identity", "logistic", "tanh", "relu"])
    train.add_argument("--solver", default="adam", choices=["adam", "sgd", "lbfgs"])
    train.add_argument("--batch-size", default="auto", help="an integer, 'auto' or 'full'")
    train.add_argument("--epochs", type=int, default=200, help="max_iter")
    train.add_argument("--lr", type=float, default=1e-3, help="learning_rate_init")
    train.add_argument("--alpha", type=float, default=1e-4, help="L2 penalty")
    train.add_argument("--backend", default="auto", choices=BACKEND_NAMES,
                       help="where to train: auto (default) uses the GPU when CuPy can, except for "
                            "training steps too small to pay for it, else the CPU")
    train.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--test-size", type=float, default=0.2)
    train.add_argument("--early-stopping", action="store_true")
    train.add_argument("--out", help="save the model to this .npz file")
    train.add_argument("--plot", help="save the loss curves to this image (needs matplotlib)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")

    predict = sub.add_parser("predict", help="predict with a saved model")
    predict.add_argument("model")
    predict.add_argument("data")
    predict.add_argument("--target", help="a label column of the CSV to drop (default: every column is a feature)")
    predict.add_argument("-o", "--output", help="write predictions to this CSV (default: stdout)")

    evaluate = sub.add_parser("evaluate", help="score a saved model on labelled data")
    evaluate.add_argument("model")
    evaluate.add_argument("data")
    evaluate.add_argument("--target", help="label column of a CSV")
    for command in (predict, evaluate):
        command.add_argument("--backend", default="auto", choices=BACKEND_NAMES,
                             help="where to run the model, whatever it was trained on: auto "
                                  "(default) keeps a model trained on the CPU there and runs "
                                  "one trained on a GPU there where this machine has one, "
                                  "else on the CPU")

    sub.add_parser("info", help="version, backends and why each is or is not usable, device, BLAS")
    sub.add_parser("bench", help="side-by-side throughput benchmark (gpunn bench --help)")
    for command in sub.choices.values():
        command.set_defaults(parser=command)  # for main to report options it does not know
    return parser


def _is_classification(name: str, y: np.ndarray, task: str) -> bool:
    if task != "auto":
        return task == "classify"
    if name in datasets.BUNDLED:
        return name in datasets.CLASSIFICATION
    return y.dtype.kind in "OUSb" or (y.dtype.kind in "iu" and len(np.unique(y)) <= 100)


def _batch_size(text: str):
    if text in ("auto", "full"):
        return text
    try:
        return int(text)
    except ValueError:
        raise UserError(f"--batch-size must be an integer, 'auto' or 'full'; got {text!r}") from None


def _check_output(path: str | None, option: str) -> None:
    """Fail now, before any work, when ``option``'s file could not be written."""
    if path is not None:
        try:
            check_output_path(path)
        except (OSError, ValueError) as exc:
            raise UserError(f"{option}: {exc}") from None


def cmd_train(args) -> None:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split

    import gpunn

    _check_output(args.out, "--out")
    _check_output(args.plot, "--plot")
    X, y = datasets.load(args.data, args.target)
    classify = _is_classification(args.data, y, args.task)
    if not 0 < args.test_size < 1:
        raise UserError(f"--test-size must be between 0 and 1; got {args.test_size}")
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=args.test_size, random_state=args.seed, stratify=y if classify else None)
    speeds: list[float] = []
    Estimator = gpunn.MLPClassifier if classify else gpunn.MLPRegressor
    est = Estimator(hidden_layer_sizes=args.hidden, activation=args.activation, solver=args.solver,
                    batch_size=_batch_size(args.batch_size), max_iter=args.epochs,
                    learning_rate_init=args.lr, alpha=args.alpha, random_state=args.seed,
                    backend=args.backend, dtype=args.dtype, early_stopping=args.early_stopping,
                    callbacks=[lambda m: speeds.append(m["samples_per_second"])])
    backend = est._backend_for(X_train, True, y_train)  # where fit will train
    device = backend.device_info().get("device", "")
    print(f"backend: {backend.name} ({device})")
    print(f"data: {args.data}: {len(X_train)} training and {len(X_test)} test samples, "
          f"{X.shape[1]} features, {'classification' if classify else 'regression'}")
    if not args.quiet:  # drawn from here on, below the lines above
        est.callbacks.append(ProgressBar(total=args.epochs))
    tic = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        est.fit(X_train, y_train)
    seconds = time.perf_counter() - tic
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        print(f"note: stopped at --epochs {args.epochs} before the loss settled; more epochs may help")
    metric = "accuracy" if classify else "R2"
    print(f"train {metric}: {est.score(X_train, y_train):.4f}")
    print(f"test {metric}: {est.score(X_test, y_test):.4f}")
    rate = statistics.median(speeds) if speeds else len(X_train) * est.n_iter_ / seconds
    print(f"epochs: {est.n_iter_} in {seconds:.2f} s; {rate:,.0f} samples/s (median per epoch)")
    if args.out:
        est.save(args.out)
        print(f"model saved to {args.out}")
    if args.plot:
        from .plot import loss_curves

        loss_curves(est).savefig(args.plot, dpi=120)
        print(f"loss curves saved to {args.plot}")


def _load_model(args):
    """The model of MODEL, on the backend ``--backend`` chooses."""
    import gpunn

    return gpunn.load(args.model, backend=args.backend)


def _features(args, n_features: int, labelled: bool = True):
    """X (and y when ``labelled``) from DATA; an unlabelled CSV uses every column."""
    if not labelled and args.data.endswith(".csv"):
        X, y = datasets.load_csv(args.data, args.target, labelled=False), None
    else:
        X, y = datasets.load(args.data, args.target)
    if X.shape[1] != n_features:
        raise UserError(f"{args.data} has {X.shape[1]} features but the model expects {n_features}")
    return X, y


def cmd_predict(args) -> None:
    _check_output(args.output, "--output")
    est = _load_model(args)
    X, _ = _features(args, est.n_features_in_, labelled=False)
    predictions = est.predict(X)
    lines = "\n".join(",".join(map(str, np.atleast_1d(p))) for p in predictions)
    if args.output:
        with open(args.output, "w") as fh:
            fh.write("prediction\n" + lines + "\n")
        print(f"{len(predictions)} predictions written to {args.output}")
    else:
        print(lines)


def cmd_evaluate(args) -> None:
    from sklearn.metrics import confusion_matrix

    est = _load_model(args)
    X, y = _features(args, est.n_features_in_)
    if hasattr(est, "classes_"):
        print(f"accuracy: {est.score(X, y):.4f}")
        print("confusion matrix (rows: true, columns: predicted; classes "
              f"{', '.join(map(str, est.classes_))}):")
        print(confusion_matrix(y, est.predict(X), labels=est.classes_))
    else:
        print(f"R2: {est.score(X, y):.4f}")


def cmd_info(args) -> None:
    import gpunn

    report = gpunn.info()
    print(f"gpunn {gpunn.__version__}")
    print(f"backend: {report['backend']} ({report['reason']})")
    for name, (ok, why) in report["backends"].items():
        print(f"  {name:6s} {'usable' if ok else 'not usable'}: {why}")
    for key, value in report["device"].items():
        print(f"{key}: {value}")


COMMANDS = {"train": cmd_train, "predict": cmd_predict, "evaluate": cmd_evaluate, "info": cmd_info}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gpunn`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:  # the benchmark parses its own options
        from . import benchmark

        return benchmark.main(argv[1:])
    args, unknown = _parser().parse_known_args(argv)
    if unknown:  # a command was given (else parsing failed), so its parser reports them
        args.parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        COMMANDS[args.command](args)
    except (UserError, OSError, ValueError, BackendUnavailableError, ImportError) as exc:
        # ValueError covers ModelFileError; OSError a file that cannot be read or written
        print(f"gpunn {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
