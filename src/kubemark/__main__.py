"""Allow `python -m kubemark`."""

from kubemark.cli import main

main()
