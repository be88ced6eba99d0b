"""Run hostile inputs in a child process with a memory cap and a timeout.

A hostile file may crash the interpreter (a segfault inside a C extension), hang it (a FIFO)
or exhaust memory; running it in-process would take the test run down with it. Each case
runs in a fresh `python` with `RLIMIT_AS` capped and a wall-clock timeout, and the test
asserts the outcome a user would see: an exit code and one line on stderr.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# torch alone maps ~1.5 GiB of address space at import; 4 GiB leaves room for a small model
# while still stopping a runaway allocation long before the machine notices.
TORCH_CAP = 4 * 2**30
PLAIN_CAP = 2 * 2**30


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def _limit(mem_bytes: int):
    def apply() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (mem_bytes, mem_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def run_python(
    code: str, *, mem_bytes: int = TORCH_CAP, timeout: float = 120, cwd: Path | None = None
) -> Outcome:
    """Run `code` in a fresh interpreter on this checkout, capped; TimeoutExpired = a hang."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"}
    env.pop("MASKLET_DEBUG", None)
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd or ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=_limit(mem_bytes),
    )
    return Outcome(done.returncode, done.stdout, done.stderr)


def run_cli(args: list[str], **kwargs) -> Outcome:
    """`masklet ARGS` in a capped child process."""
    code = (
        f"import sys; from app.headless.cli import main; sys.exit(main({[str(a) for a in args]!r}))"
    )
    return run_python(code, **kwargs)


def assert_refused(outcome: Outcome, *, code: int = 1, says: str | None = None) -> str:
    """The child exited with `code` and printed exactly one line, with no traceback."""
    lines = outcome.error_lines
    assert outcome.returncode == code, (outcome.returncode, outcome.stderr[-2000:])
    assert len(lines) == 1, outcome.stderr[-2000:]
    assert "Traceback" not in outcome.stderr
    if says is not None:
        assert says.lower() in lines[0].lower(), lines[0]
    return lines[0]


def digest_tree(*paths: Path) -> dict[str, str]:
    """sha256 of every file under `paths` (symlinks recorded by target), for untouched-checks."""
    out: dict[str, str] = {}
    for top in paths:
        items = [top] if not top.is_dir() or top.is_symlink() else sorted(top.rglob("*"))
        for p in items:
            if p.is_symlink():
                out[str(p)] = "link:" + os.readlink(p)
            elif p.is_file():
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
            elif p.is_dir():
                out[str(p)] = "dir"
    return out
