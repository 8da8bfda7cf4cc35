"""Run the command line: ``python -m eventlab demo``."""

from .cli import main

main()
