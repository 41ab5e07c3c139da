"""The seed's hello world as a mod_python handler (the PythonHandler row of the seed's table)."""
from mod_python import apache


def handler(req):
    req.content_type = 'text/plain'
    req.write('mod_wsgi works!')
    return apache.OK
