"""Unit tests: the pure parts of pywsgi called in this process, no server, no socket, no fork.
The functional tests (tests/test_*.py) run real servers."""
import pytest

from pywsgi.config import build
from pywsgi.site import routing


@pytest.fixture
def settings():
    """build(**values): the settings as the CLI would build them (defaults filled in)."""
    return build


@pytest.fixture(autouse=True)
def no_internal_router():
    """load_mounts sets the process's router for internal redirects: not past a test."""
    yield
    routing.set_internal_router(None)
