"""`python -m server [flags]`: the same as `li2 serve`."""

import sys

from .cli import serve_command

sys.exit(serve_command(sys.argv[1:]))
