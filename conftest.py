"""Root pytest configuration: skip doctest collection of backends that are not installed."""

import importlib.util

collect_ignore = ["setup.py", "benchmarks/__main__.py"]
if importlib.util.find_spec("charm") is None:
    collect_ignore.append("abe_health/hazmat/pairing/charm.py")
