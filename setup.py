"""Packaging of abe-health: the toolkit, the PASS-tree search index and the benchmark suites."""

import re
from pathlib import Path

from setuptools import find_packages, setup

#: the one version source: abe_health/__init__.py
VERSION = re.search(r'^__version__ = "([^"]+)"', Path("abe_health/__init__.py").read_text(encoding="utf-8"),
                    re.M).group(1)

setup(
    name="abe-health",
    version=VERSION,
    description=(
        "Attribute-based encryption, revocation and encrypted search for personal health records"
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    license_files=["LICENSE"],
    author="The abe-health developers",
    url="https://github.com/abe-health/abe-health",
    project_urls={"Documentation": "https://github.com/abe-health/abe-health/tree/main/docs",
                  "Security": "https://github.com/abe-health/abe-health/blob/main/docs/security.md"},
    python_requires=">=3.10",
    packages=find_packages(include=["abe_health", "abe_health.*", "search", "search.*",
                                    "benchmarks", "benchmarks.*"]),
    package_data={"abe_health": ["py.typed", "hazmat/schemes/fame_columns.bin"],
                  "search": ["py.typed"]},
    install_requires=[
        "pymcl>=1.0.2",
        "cryptography>=47",
        "cbor2>=5.6",
        "click>=8.1",
        "numpy>=1.26",
        "starlette>=0.40",
        "uvicorn>=0.30",
        "httptools>=0.6",
        "uvloop>=0.19; sys_platform != 'win32'",
    ],
    extras_require={
        "dev": ["pytest>=8", "hypothesis>=6.100", "ruff>=0.6", "mypy>=1.10", "fhir.resources>=7.1",
                "dask[distributed]>=2024.1", "httpx>=0.27"],
        "scale": ["dask[distributed]>=2024.1"],
        "fhir": ["fhir.resources>=7.1"],
        "bench": ["matplotlib>=3.8"],
        "docs": ["mkdocs>=1.6", "mkdocstrings[python]>=0.29"],
        "charm": ["charm-crypto-framework>=0.62"],
    },
    entry_points={"console_scripts": ["abe-health=abe_health.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Intended Audience :: Healthcare Industry",
        "Topic :: Security :: Cryptography",
    ],
)
