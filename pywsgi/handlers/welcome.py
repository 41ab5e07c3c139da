"""The page served when no application is mounted (`pywsgi` with no script)."""
from __future__ import annotations

from pywsgi.version import __version__

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>pywsgi is running</title></head>
<body>
<h1>pywsgi is running</h1>
<p>pywsgi {version} is listening, but no application is mounted.</p>
<p>Mount a script with <code>pywsgi myapp.wsgi</code>, a module with
<code>pywsgi pkg.module:application</code>, or several with
<code>--script-alias /url=PATH</code>. See <code>pywsgi --help</code>.</p>
<p>Request: <code>{method} {path}</code></p>
</body>
</html>
"""


def application(environ, start_response):
    import html  # (here: only a server with nothing mounted needs it)

    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    page = _PAGE.format(
        version=html.escape(__version__),
        method=html.escape(environ.get("REQUEST_METHOD", "GET")),
        # PATH_INFO is latin-1 decoded bytes (PEP 3333); show them as the UTF-8 they likely were.
        path=html.escape(path.encode("latin-1", "replace").decode("utf-8", "replace")),
    )
    body = page.encode("utf-8")
    start_response("200 OK", [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Length", str(len(body))),
    ])
    return [body]
