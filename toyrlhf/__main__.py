"""``python -m toyrlhf`` is the ``toyrlhf`` command."""

import sys

from toyrlhf.cli import main

sys.exit(main())
