"""`python -m redkeeper` runs the CLI."""

from redkeeper.cli import main

main()
