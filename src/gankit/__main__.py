"""``python -m gankit``: the command line (also what ``torchrun -m gankit`` starts)."""

import sys

from gankit.cli import main

sys.exit(main())
