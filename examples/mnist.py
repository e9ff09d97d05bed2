"""An MLP on MNIST read from IDX files (gzipped or not).

Usage: python examples/mnist.py [MNIST_DIR] [--limit N] [--epochs E] [--out OUT_DIR]
The default folder is ../shared/data/mnist (where the project's machines keep it).
"""

import argparse
import time
from pathlib import Path

import gpunn
from gpunn.datasets import load_mnist

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("folder", nargs="?", default="../shared/data/mnist")
parser.add_argument("--limit", type=int, default=None, help="use the first N training images")
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--out", default="examples/out")
args = parser.parse_args()

X_train, y_train = load_mnist(args.folder, "train")
X_test, y_test = load_mnist(args.folder, "t10k")
if args.limit:
    X_train, y_train = X_train[: args.limit], y_train[: args.limit]
clf = gpunn.MLPClassifier(hidden_layer_sizes=(256, 128), batch_size=256, max_iter=args.epochs,
                          learning_rate_init=1e-3, random_state=0, early_stopping=True,
                          n_iter_no_change=args.epochs)
tic = time.perf_counter()
clf.fit(X_train, y_train)
seconds = time.perf_counter() - tic
print(f"backend: {clf.backend_}")
print(f"{len(X_train)} training images, {clf.n_iter_} epochs in {seconds:.1f} s "
      f"({len(X_train) * clf.n_iter_ / seconds:,.0f} samples/s)")
print(f"test accuracy: {clf.score(X_test, y_test):.4f}")

out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)
import matplotlib  # noqa: E402

matplotlib.use("Agg")
from gpunn.plot import loss_curves  # noqa: E402

loss_curves(clf).savefig(out / "mnist_curves.png", dpi=110)
print(f"picture: {out / 'mnist_curves.png'}")
