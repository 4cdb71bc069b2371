"""``python -m harness.cli`` runs the ``jointdnn`` command line."""

import sys

from harness.cli import main

sys.exit(main())
