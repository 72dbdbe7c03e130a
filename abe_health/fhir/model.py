"""FHIR R4 validation with the models the Python ecosystem uses (`fhir.resources`, its R4B
package: R4B changed no Bundle element and no resource these bundles carry from R4), an
optional dependency: `pip install "abe-health[fhir]"`. Reading a bundle file is here too, so
every input is parsed and checked at one edge.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import Any

from ..errors import InvalidBundle, MissingExtra

#: the largest bundle file read (bytes)
MAX_BUNDLE_FILE = 256 * 1024 * 1024
EXTRA_MESSAGE = ("FHIR support needs the optional package fhir.resources: "
                 'install the extra with pip install "abe-health[fhir]"')


def _bundle_model() -> Any:
    try:
        return importlib.import_module("fhir.resources.R4B.bundle").Bundle
    except ImportError:
        raise MissingExtra(EXTRA_MESSAGE, case="fhir-extra") from None


def available() -> bool:
    """Whether the FHIR models are installed."""
    try:
        _bundle_model()
    except MissingExtra:
        return False
    return True


def validate_bundle(bundle: Any, what: str = "bundle") -> None:
    """Refuse (InvalidBundle, naming the first offending element) anything that is not a valid
    FHIR R4 Bundle; MissingExtra when `fhir.resources` is not installed."""
    model = _bundle_model()
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise InvalidBundle(f"{what}: not a FHIR Bundle (resourceType is not 'Bundle')")
    try:
        model.model_validate(bundle)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        errors = getattr(exc, "errors", None)
        first = errors()[0] if callable(errors) and errors() else None
        if first is not None:
            where = ".".join(str(p) for p in first.get("loc", ()))
            detail = f"{where}: {first.get('msg', 'invalid')}"
        else:
            detail = str(exc).splitlines()[0]
        raise InvalidBundle(f"{what} is not a valid FHIR R4 Bundle: {detail[:300]}") from None


def load_bundle(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A Bundle from a UTF-8 JSON file (InvalidBundle if unreadable, not JSON or not a
    Bundle object; validation against the models is `validate_bundle`)."""
    try:
        with open(path, "rb") as fin:
            raw = fin.read(MAX_BUNDLE_FILE + 1)
    except OSError as exc:
        raise InvalidBundle(f"cannot read bundle {path}: {exc.strerror}") from None
    if len(raw) > MAX_BUNDLE_FILE:
        raise InvalidBundle(f"bundle {path} is larger than {MAX_BUNDLE_FILE} bytes")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InvalidBundle(f"bundle {path} is not UTF-8 text (byte {exc.start})") from None
    except (json.JSONDecodeError, RecursionError) as exc:
        raise InvalidBundle(f"bundle {path} is not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
        raise InvalidBundle(f"{Path(path).name}: not a FHIR Bundle (resourceType is not 'Bundle')")
    return data
