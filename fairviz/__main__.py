"""`python -m fairviz ...` — see `fairviz.cli`."""

import sys

from fairviz.cli import main

sys.exit(main())
