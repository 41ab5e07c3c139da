"""pywsgi: a WSGI server with a C/Cython core that does what Apache + mod_wsgi does.

    import pywsgi
    pywsgi.serve(application, port=8080, processes=2, threads=5)

takes the same settings as the command line (see pywsgi.config.SETTINGS, or `pywsgi --help`).
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "serve"]


def serve(app=None, **settings) -> None:
    """Serve `app` (a WSGI callable) until SIGTERM/SIGINT, through the same master as the CLI.

    `app` is mounted at `mount_point` (default the root); `script_alias=['/b=b.wsgi', ...]` adds
    more mounts. Must be called from the main thread (the master handles signals). Bad settings
    raise pywsgi.config.ConfigError, a bad address or port pywsgi.master.StartupError; if the
    application fails to load in the server processes, RuntimeError.
    """
    import sys

    from pywsgi import config, master

    if settings.get("apache_config"):  # below the settings given here, as on the command line
        from pywsgi import apacheconf
        imported, _, warnings = apacheconf.read(settings["apache_config"],
                                                settings.get("apache_root"))
        for warning in warnings:
            sys.stderr.write(f"pywsgi: warning: {warning}\n")
        settings = {**imported, **settings}
    built = config.build(settings)
    mounts = master.plan_mounts(built, app=app)
    code = master.run(built, mounts)
    if code != master.EXIT_OK:
        raise RuntimeError(f"pywsgi stopped with exit code {code}")
