"""pywsgi: a WSGI server with a C/Cython core that does what Apache + mod_wsgi does.

    import pywsgi
    pywsgi.serve(application, port=8080, processes=2, threads=5)

takes the same settings as the command line (see pywsgi.config.SETTINGS, or `pywsgi --help`).
"""
from __future__ import annotations

from pywsgi.version import __version__

__all__ = ["__version__", "serve"]


def serve(app=None, config=None, **settings) -> None:
    """Serve `app` (a WSGI callable) until SIGTERM/SIGINT, through the same master as the CLI.

    `app` is mounted at `mount_point` (default the root); `script_alias=['/b=b.wsgi', ...]` adds
    more mounts. The keywords are the settings of `pywsgi --help` (pywsgi.config.SETTINGS); they
    win over PYWSGI_* environment variables, which win over the TOML file `config=` names (whose
    `application` key is served when `app` is None). Must be called from the main thread (the
    master handles signals). Bad settings raise pywsgi.config.ConfigError, a bad address or port
    pywsgi.errors.StartupError; if the application fails to load in the server processes,
    RuntimeError.
    """
    # Imported here, not at the top: `import pywsgi` stays light for what needs only a piece of
    # the package (python -m pywsgi.cgi runs once per CGI request, the C core imports the
    # error log).
    import os

    from pywsgi.config import settings as table
    from pywsgi.config import sources
    from pywsgi.errors import EXIT_OK
    from pywsgi.process.arbiter import run
    from pywsgi.site.plan import plan_mounts

    files = sources.apache_sources(settings, os.environ)
    files += [sources.read_toml(os.fspath(config))] if config is not None else []
    collected = sources.collect(settings, environ=os.environ, files=files,
                                cli_origin=lambda setting: "serve(%s=...)" % setting.name)
    built = table.build(collected.values)
    if app is None and collected.application is not None:
        mounts = plan_mounts(built, script=collected.application)
    else:
        mounts = plan_mounts(built, app=app)
    code = run(built, mounts)
    if code != EXIT_OK:
        raise RuntimeError(f"pywsgi stopped with exit code {code}")
