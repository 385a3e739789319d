"""The process cap for a non-root user (RLIMIT_NPROC inside bubblewrap's user namespace, no
pids cgroup): run as `nobody` through `setpriv` when the suite runs as root. A fork bomb that
raises no audit event is stopped by the kernel, a `setsid` child dies with the run, and the
reported layers name the cap that held."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hostile_programs import PROBLEM, PROGRAMS
from reasonfactory.generators.verify.sandbox_layers import weak_layers

ROOT = Path(__file__).resolve().parents[1]
MARKER = "987.6543"
SCRIPT = """
import json, site, sys
site.addsitedir(sys.argv[1])  # this checkout's venv (its .pth maps reasonfactory here)
from reasonfactory.generators.verify.code_tests import CodeOptions, read_tests, verify_many
job = json.loads(sys.stdin.read())
tests = read_tests(job["problem"])
out = []
for processes, texts in ((0, job["capped"]), (4, job["allowed"])):
    options = CodeOptions(timeout_s=2.0, workers=2, processes=processes)
    out += [v.to_dict() for v in verify_many([(tests, t) for t in texts], options)]
print(json.dumps(out))
"""


def _nobody_python() -> str | None:
    """An interpreter of this Python version that user `nobody` can run and bubblewrap can
    bind for it: the system's first (the venv's may live under /root)."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (f"/usr/bin/{version}", os.path.realpath(sys.executable)):
        probe = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", candidate, "-V"]
        if Path(candidate).exists() and subprocess.run(probe, capture_output=True).returncode == 0:
            return candidate
    return None


def _fill(text: str) -> str:
    return (
        "```python\n"
        + text.replace("{marker}", MARKER).replace("{{", "{").replace("}}", "}")
        + "```"
    )


def test_the_process_cap_holds_and_is_reported_for_a_non_root_user():
    if weak_layers():
        pytest.skip(f"this machine's sandbox lacks {weak_layers()}")
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("runs as root and switches to nobody with setpriv")
    python = _nobody_python()
    site_packages = (
        ROOT
        / ".venv"
        / "lib"
        / f"python{sys.version_info.major}.{sys.version_info.minor}"
        / "site-packages"
    )
    if python is None or not site_packages.is_dir():
        pytest.skip("no interpreter or checkout venv that nobody can read")
    job = {
        "problem": PROBLEM,
        "capped": [_fill(PROGRAMS["fork_bombing_without_audit"][0]), _fill(PROGRAMS["correct"][0])],
        "allowed": [_fill(PROGRAMS["setsid_orphaning"][0] + "import time\ntime.sleep(0.5)\n")],
    }
    proc = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            python,
            "-c",
            SCRIPT,
            str(site_packages),
        ],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=240,
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"},
        cwd="/",
    )
    if proc.returncode != 0 and "Permission denied" in proc.stderr:
        pytest.skip("nobody cannot read this checkout: " + proc.stderr.strip().splitlines()[-1])
    assert proc.returncode == 0, proc.stderr[-2000:]
    bomb, correct, orphan = json.loads(proc.stdout)
    assert bomb["verdict"] == "runtime_error"
    assert "Resource temporarily unavailable" in bomb["detail"]  # the kernel, not the hook
    assert correct["verdict"] == "passed" and orphan["verdict"] == "passed"
    assert "pids_cgroup" not in correct["sandbox"] and "nproc_rlimit" in correct["sandbox"]
    found = subprocess.run(["pgrep", "-f", MARKER], capture_output=True, text=True)
    assert found.stdout.strip() == ""  # the setsid child died with the run
