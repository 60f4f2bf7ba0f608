"""``python -m jaxunc`` is the ``jaxunc`` command."""

import sys

from jaxunc.cli import main

sys.exit(main())
