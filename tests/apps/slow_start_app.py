"""tests/apps/daemon_app.py behind a load that waits: while the file $PYWSGI_TEST_HOLD exists,
importing this script does not return, so the process loading it (a daemon process, in the
readiness tests) is not ready until the test removes the file."""
import os
import sys
import time

HOLD = os.environ.get('PYWSGI_TEST_HOLD')
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

give_up = time.monotonic() + 60  # a forgotten hold file must not hang a test run
while HOLD and os.path.exists(HOLD) and time.monotonic() < give_up:
    time.sleep(0.05)

from daemon_app import application  # noqa: E402,F401  (after the wait, on purpose)
