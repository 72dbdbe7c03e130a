"""Root pytest configuration: skip doctest collection of backends that are not installed."""

import importlib.util

collect_ignore = ["setup.py", "benchmarks/__main__.py"]
#: the vector generators are scripts (run by hand when a format changes), not test modules; two
#: of them share the basename generate.py, which doctest collection would import as one module
collect_ignore_glob = ["tests/vectors/*generate.py", "tests/vectors/*/generate.py"]
if importlib.util.find_spec("charm") is None:
    collect_ignore.append("abe_health/hazmat/pairing/charm.py")
