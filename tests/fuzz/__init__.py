"""A fuzz suite for every parser of abe-health that reads bytes someone else may have written.

Run it with `python -m tests.fuzz --cases N` (see `docs/fuzzing.md`). Each surface (policy text,
armor, key files, `.abe` files, `.phr` records, search index directories, vault directories,
owner key and signature files) has a module here with its seeds (generated through the public
API into `corpus/`), its structure-aware mutations and its oracle: a case passes when the call
returns the right content or raises a typed toolkit error (`abe_health.errors.AbeError`,
`search.errors.SearchError`). Anything else (another exception, a hang past the timeout, a
memory blowup, wrong content returned without an error) is a failure, saved as a reproducer
under `reproducers/<surface>/` and replayed by `tests/test_fuzz.py`.
"""
