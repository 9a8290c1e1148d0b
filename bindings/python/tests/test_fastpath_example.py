"""examples/python/fastpath.py against the shared fastpath contract
(tests/fastpath_contract.sh: curl checks of native validation, the cache, CORS,
the rate limit, API keys, static files, metrics), run with this interpreter."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_fastpath_example_contract() -> None:
    r = subprocess.run(["bash", str(ROOT / "tests" / "fastpath_contract.sh"), sys.executable, "python/fastpath.py"],
                       env={**os.environ, "WORKERS": "2"}, capture_output=True, text=True, timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "fastpath contract ok" in out
    assert "\nFAIL " not in "\n" + out
