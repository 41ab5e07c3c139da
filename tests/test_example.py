"""Acceptance (issue 2): the bundled examples/myapp.wsgi, run with the installed `pywsgi` command,
answers with the seed's `mod_wsgi works!`, also mounted at /myapp like WSGIScriptAlias /myapp."""
import sys
from pathlib import Path

import pytest

from serverproc import EXAMPLE_APP

PYWSGI_COMMAND = Path(sys.executable).parent / 'pywsgi'


@pytest.fixture
def pywsgi_command():
    assert PYWSGI_COMMAND.exists(), 'the console script is installed beside the interpreter'
    return [str(PYWSGI_COMMAND)]


def test_example_served_by_the_console_script(start_server, pywsgi_command):
    server = start_server(EXAMPLE_APP, command=pywsgi_command)
    response, body = server.get('/')
    assert response.status == 200
    assert body == b'mod_wsgi works!'
    assert response.getheader('Content-Type') == 'text/plain'
    assert response.getheader('Content-Length') == '15'


def test_example_at_the_seed_mount_point(start_server, pywsgi_command):
    server = start_server(EXAMPLE_APP, '--mount-point', '/myapp', command=pywsgi_command)
    for path in ('/myapp', '/myapp/'):
        response, body = server.get(path)
        assert (response.status, body) == (200, b'mod_wsgi works!')
