"""`python -m course_lib <command>`: the command line (`course_lib.app.cli`)."""

import sys

from .app.cli import main

if __name__ == "__main__":
    sys.exit(main())
