"""The `kam` executable's fast exit (kam_assets.cli.run): the exit code of main(), atexit
handlers run, non-daemon threads finish and buffered output arrives — what a normal exit
gives, without the interpreter's teardown."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import atexit, sys, threading, time
import kam_assets.cli as cli

atexit.register(lambda: print("atexit handler ran"))

def main():
    def late():
        time.sleep(0.3)
        print("thread finished")
    threading.Thread(target=late).start()
    sys.stdout.write("buffered line")  # no newline: still in the buffer at exit
    return {code}

cli.main = main
cli.run()
print("never printed")
"""


@pytest.mark.parametrize("code, expected", [(0, 0), (2, 2), (None, 0)])
def test_run_exits_like_sys_exit_of_main(code, expected) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(code=code)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == expected, proc.stderr
    assert "buffered line" in proc.stdout
    assert "thread finished" in proc.stdout
    assert "atexit handler ran" in proc.stdout
    assert "never printed" not in proc.stdout


def test_the_installed_executable_uses_it() -> None:
    from importlib.metadata import entry_points

    [kam] = [e for e in entry_points(group="console_scripts") if e.name == "kam"]
    assert kam.value == "kam_assets.cli:run"
