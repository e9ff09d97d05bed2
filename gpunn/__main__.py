"""``python -m gpunn``: the command line (see ``gpunn.cli``)."""

import sys

from .cli import main

sys.exit(main())
