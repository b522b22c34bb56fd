"""The one task runner: ``nox`` runs lint, type checks and the whole test suite.

``nox -s demo`` runs the demo, ``nox -s bench`` the benchmarks.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = False
nox.options.error_on_missing_interpreters = True

CORE = "packages/dexcost-core"
LANGCHAIN = "packages/dexcost-langchain"
PACKAGES = [CORE, LANGCHAIN]
# Tool versions are pinned so that a new release never turns CI red on its own.
LINT_TOOLS = ["ruff==0.17.6"]
TYPE_TOOLS = ["mypy==2.4.1", "types-PyYAML"]
TEST_TOOLS = ["pytest>=8", "pytest-asyncio>=0.24", "hypothesis>=6.100"]
# Real libraries the tests drive; none is a dependency of dexcost itself.
TEST_LIBRARIES = [
    # provider SDKs and what they talk through
    "openai",
    "anthropic",
    "litellm",
    "google-genai",
    "cohere",
    "boto3",
    "aiobotocore",  # pins a botocore range: boto3 resolves to a release that fits it
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
    session.install(*TYPE_TOOLS, *TEST_LIBRARIES, *[f"./{p}" for p in PACKAGES])
    session.run(
        "mypy",
        "packages/dexcost-core/src/dexcost",
        "packages/dexcost-langchain/src/dexcost_langchain",
    )


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite against the installed packages."""
    session.install(*TEST_TOOLS, *TEST_LIBRARIES, *[f"./{p}" for p in PACKAGES])
    # litellm must not fetch its price map from the network at import (tests only).
    session.env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    session.run("pytest", *session.posargs)


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
    session.install(f"./{CORE}")
    session.run("python", "bench/run.py", *session.posargs)
