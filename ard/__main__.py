"""`python -m ard <stage> ...`, the same as the `ard` console script."""
import sys

from ard.cli import main

sys.exit(main())
