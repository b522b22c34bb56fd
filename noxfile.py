"""The one task runner: ``nox`` runs lint, type checks and the whole test suite.

``nox -s demo`` runs the demo, ``nox -s bench`` the benchmarks.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nox

nox.options.sessions = ["lint", "typecheck", "tests", "tests-newest"]
nox.options.reuse_existing_virtualenvs = False
nox.options.error_on_missing_interpreters = True

CORE = "packages/dexcost-core"
LANGCHAIN = "packages/dexcost-langchain"
PACKAGES = [CORE, LANGCHAIN]
# Tool versions are pinned so that a new release never turns CI red on its own.
LINT_TOOLS = ["ruff==0.17.6"]
TYPE_TOOLS = ["mypy==2.4.1", "types-PyYAML"]
TEST_TOOLS = ["pytest>=8", "pytest-asyncio>=0.24", "hypothesis>=6.100"]
# The test environments are pinned with pip constraints, so that a new release of a
# library never turns CI red on its own; `nox -s refresh-constraints` re-pins them.
# reference: openai 2.x and the litellm release the bundled price data comes from (the
# pricing parity tests compare against it), and aiobotocore, which holds botocore to the
# range it supports. newest: the newest releases (openai 3.x, the newest botocore).
REFERENCE = "tests/constraints/reference.txt"
NEWEST = "tests/constraints/newest.txt"
REFERENCE_ONLY = ["aiobotocore"]
# Real libraries the tests drive; none is a dependency of dexcost itself.
TEST_LIBRARIES = [
    # provider SDKs and what they talk through
    "openai",
    "anthropic",
    "litellm",
    "google-genai",
    "cohere",
    "boto3",
    "mcp",
    "httpx",
    "httpx-aiohttp",
    "aiohttp",
    "requests",
    "respx",
    # frameworks
    "langchain-core",
    "langchain-openai",
    "langgraph",
]


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint rules and formatting."""
    session.install(*LINT_TOOLS)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the public packages."""
    # The instrumentation is checked against the real SDKs' own type information.
    session.install("-c", NEWEST, *TYPE_TOOLS, *TEST_LIBRARIES, *[f"./{p}" for p in PACKAGES])
    session.run(
        "mypy",
        "packages/dexcost-core/src/dexcost",
        "packages/dexcost-langchain/src/dexcost_langchain",
    )


def _run_tests(session: nox.Session, constraints: str, *extra: str) -> None:
    packages = [f"./{p}" for p in PACKAGES]
    session.install("-c", constraints, *TEST_TOOLS, *TEST_LIBRARIES, *extra, *packages)
    # litellm must not fetch its price map from the network at import (tests only).
    session.env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    session.run("pytest", *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """The whole suite on openai 2.x and the litellm release the bundled prices come from."""
    _run_tests(session, REFERENCE, *REFERENCE_ONLY)


@nox.session(name="tests-newest")
def tests_newest(session: nox.Session) -> None:
    """The whole suite again on the newest SDK releases (openai 3.x, which talks httpx2)."""
    _run_tests(session, NEWEST)


@nox.session(name="refresh-constraints", default=False)
def refresh_constraints(session: nox.Session) -> None:
    """Re-pin both test environments to the newest releases that install together.

    Run it, then ``nox``; commit the two files when the suite passes.
    """
    litellm = f"litellm=={_price_data_release()}"
    for path, extra in ((REFERENCE, [litellm, *REFERENCE_ONLY]), (NEWEST, ["openai>=3"])):
        venv = Path(session.create_tmp()) / Path(path).stem
        session.run("python", "-m", "venv", "--clear", str(venv))
        pip = str(venv / ("Scripts" if sys.platform == "win32" else "bin") / "pip")
        session.run(pip, "install", "--quiet", *TEST_TOOLS, *TEST_LIBRARIES, *extra)
        frozen = session.run(pip, "freeze", silent=True)
        assert isinstance(frozen, str)
        lines = [line for line in frozen.splitlines() if not line.startswith(("-e ", "dexcost"))]
        Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
        session.log(f"{path}: {len(lines)} pins")


def _price_data_release() -> str:
    """The litellm release the bundled price data was copied from (its SOURCE.md)."""
    source = Path(CORE, "src/dexcost/pricing/data/SOURCE.md").read_text(encoding="utf-8")
    found = re.search(r"\*\*litellm (\S+)\*\*", source)
    if found is None:
        raise RuntimeError("pricing/data/SOURCE.md names no litellm release")
    return found.group(1)


@nox.session
def demo(session: nox.Session) -> None:
    """A day of a small agent business, ending with its cost report."""
    session.install(f"./{CORE}")
    session.run("python", "examples/agent_day.py")


@nox.session
def examples(session: nox.Session) -> None:
    """Every example, with the frameworks it shows."""
    session.install(f"./{CORE}", f"./{LANGCHAIN}", "langchain-core", "langgraph")
    session.run("python", "examples/agent_day.py")
    session.run("python", "examples/langchain_support_agent.py")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks: hot-path overhead and store throughput, printed as a table."""
    session.install("-r", "bench/requirements.txt", f"./{CORE}")
    session.run("python", "bench/run.py", *session.posargs)
