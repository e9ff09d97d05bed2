"""gpunn: multi-layer perceptrons with scikit-learn's API, fast on GPUs and CPUs.

Swap the import and keep your code::

    from gpunn import MLPClassifier
    clf = MLPClassifier(hidden_layer_sizes=(5, 2), activation="logistic")
    clf.fit(X_train, y_train).predict(X_test)

The same model scikit-learn would give (same parameters, same ``random_state``), trained
on an NVIDIA GPU through CuPy when one is present, else on the CPU through NumPy; under
the default ``backend="auto"`` a training step too small to pay for a GPU's kernel
launches (``gpunn.backends.GPU_MIN_STEP_FLOPS``) runs on the CPU even where there is one.
``est.backend_`` says where a fitted model is; ``gpunn.info()`` says what "auto" picks
here for networks big enough for the GPU, and why; ``backend="numpy" | "cupy" | "auto"``
chooses (``GPUNN_BACKEND`` in the environment moves every estimator left on "auto").
A call that raises (bad input, a diverging run) leaves the estimator as it was. CuPy
arrays are taken where they are: ``fit`` on one makes no host copy, and ``predict`` on
one returns one. On the CPU, what NumPy cannot fuse (the optimizer step, bias + ReLU)
runs compiled for your CPU at first use when a C++ compiler is present
(``GPUNN_CPU_KERNELS=0`` turns that off).

Modules: ``backends`` (the numeric contract and its NumPy/CuPy implementations),
``mlp`` (the network on one flat parameter buffer), ``optim`` and ``schedules``,
``trainer`` (the mini-batch and L-BFGS loops), ``estimators`` (the scikit-learn API),
``rollback`` (a call that raises changes nothing), ``io`` (model files without pickle,
checkpoints), ``model_state`` (what a model file holds, checked on load), ``kernels``
and ``cpu_kernels`` (the CUDA and CPU kernel builds), ``datasets``, ``cli``,
``progress`` (the training progress bar), ``plot``, ``benchmark``.
"""

from .backends import BackendUnavailableError, available_backends, get_backend, info
from .estimators import MLPClassifier, MLPRegressor
from .io import Checkpoint, ModelFileError, load
from .trainer import DivergenceError

__version__ = "0.1.0"

__all__ = [
    "MLPClassifier",
    "MLPRegressor",
    "Checkpoint",
    "load",
    "ModelFileError",
    "BackendUnavailableError",
    "DivergenceError",
    "available_backends",
    "get_backend",
    "info",
    "__version__",
]
