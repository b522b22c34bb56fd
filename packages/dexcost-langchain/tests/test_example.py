"""The example runs as documented and shows costs by customer and by task."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "langchain_support_agent.py"


def test_the_support_agent_example_runs(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    env["TMPDIR"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-W", "error", str(EXAMPLE)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    out = done.stdout
    for customer in ("acme-corp", "globex", "initech"):
        assert customer in out
    assert "issue_refund" in out
    assert "failed: PermissionError" in out
