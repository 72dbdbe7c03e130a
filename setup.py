"""Packaging of abe-health: the toolkit, the PASS-tree search index and the benchmark suites."""

from setuptools import find_packages, setup

setup(
    name="abe-health",
    version="0.2.0",
    description=(
        "Attribute-based encryption, revocation and encrypted search for personal health records"
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["abe_health", "abe_health.*", "search", "search.*",
                                    "benchmarks", "benchmarks.*"]),
    package_data={"abe_health": ["py.typed"], "search": ["py.typed"]},
    install_requires=[
        "pymcl>=1.0.2",
        "cryptography>=47",
        "cbor2>=5.6",
        "click>=8.1",
        "numpy>=1.26",
    ],
    extras_require={
        "dev": ["pytest>=8", "hypothesis>=6.100", "ruff>=0.6"],
        "bench": ["matplotlib>=3.8"],
        "charm": ["charm-crypto-framework>=0.62"],
    },
    entry_points={"console_scripts": ["abe-health=abe_health.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Security :: Cryptography",
    ],
)
