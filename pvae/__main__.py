"""``python -m pvae``: the same as the ``pvae`` command."""

import sys

from pvae.app.cli import main

if __name__ == "__main__":
    sys.exit(main())
