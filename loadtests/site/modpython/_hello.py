"""The seed's mod_python row (PythonHandler): the same hello world as a mod_python handler.
pywsgi: --python-path loadtests/site/modpython --mod-python-shim --python-handler /mpapp=_hello;
Apache: <Location /mpapp> SetHandler mod_python, PythonHandler _hello.
The leading underscore keeps `locust -f loadtests/` from importing it (mod_python exists only
inside Apache, or behind pywsgi's --mod-python-shim)."""
from mod_python import apache


def handler(req):
    req.content_type = 'text/plain'
    req.write('mod_wsgi works!')
    return apache.OK
