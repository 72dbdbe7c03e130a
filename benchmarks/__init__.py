"""Benchmark suites of abe-health: `python -m benchmarks SUITE [--quick] [--out DIR]`.

Each suite returns a `Report` (rows of measurements) that the runner writes as `results.json`,
`results.md` and, where matplotlib is installed, PNG plots under `DIR/SUITE/`.
"""
