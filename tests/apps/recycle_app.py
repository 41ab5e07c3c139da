"""WSGI app for the daemon-group tests (tests/test_daemon_groups.py): daemon_app's routes plus
`hog`, which makes the process hold memory, so memory-limit= has something to act on."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_app import application as daemon_application  # noqa: E402
from daemon_app import respond

_held = []


def hog_app(environ, start_response):
    """Hold 64 MiB more in this process (touched, so it counts in the RSS)."""
    _held.append(bytearray(os.urandom(1)) * (64 * 1024 * 1024))
    return respond(start_response, b'holding %d MiB' % (64 * len(_held)))


def application(environ, start_response):
    if environ.get('PATH_INFO', '').startswith('/hog'):
        return hog_app(environ, start_response)
    return daemon_application(environ, start_response)
