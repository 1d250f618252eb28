"""tests/_subprocess.py: a helper script that crashes is started again once, with a warning
that carries its output; an exit status or a second crash still fails."""

import pytest

from _subprocess import run_all

# Dies of SIGSEGV (with faulthandler's stack on its output) while MARKER is absent,
# creating it first; then prints "done".
SCRIPT = """
import os, pathlib, signal, sys
marker = pathlib.Path(sys.argv[1])
if not marker.exists() or sys.argv[2] == "always":
    marker.touch()
    print("before the crash", flush=True)
    os.kill(os.getpid(), signal.SIGSEGV)
print("done")
sys.exit(int(sys.argv[3]))
"""


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "crash_once.py"
    path.write_text(SCRIPT)
    return lambda mode, status=0: [str(path), str(tmp_path / f"marker_{mode}"), mode,
                                   str(status)]


def test_a_crash_is_rerun_once_with_a_warning(script):
    with pytest.warns(UserWarning, match=r"died of signal 11; started again:\n"
                                         r"(.|\n)*before the crash(.|\n)*Segmentation fault"):
        (out,) = run_all([script("once")], timeout=60, crash_reruns=1)
    assert out.strip() == "done"


def test_a_second_crash_an_exit_status_or_no_reruns_fail(script):
    with pytest.warns(UserWarning, match="died of signal 11"), \
            pytest.raises(AssertionError, match="exited with -11"):
        run_all([script("always")], timeout=60, crash_reruns=1)
    with pytest.warns(UserWarning, match="died of signal 11"), \
            pytest.raises(AssertionError, match="exited with 3"):
        run_all([script("status", 3)], timeout=60, crash_reruns=1)  # Crash, rerun, status 3.
    with pytest.raises(AssertionError, match="exited with -11"):
        run_all([script("never")], timeout=60)
