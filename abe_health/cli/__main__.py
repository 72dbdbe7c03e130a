"""`python -m abe_health.cli`: the `abe-health` command (tests and scripts run it this way)."""

from . import main

main()
