"""``python -m glm_relay``: the operator CLI (see :mod:`glm_relay.cli`).

The Lambda runtime loop is started as ``python -m glm_relay.runtime`` and never runs this file.
"""

import sys

from glm_relay.cli import main

if __name__ == "__main__":
    sys.exit(main())
