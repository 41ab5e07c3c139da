"""The CGI side of --cgi-script: run one WSGI script once as a CGI program.

Started as ``python .../pywsgi/handlers/_cgi_child.py [--callable-object NAME] SCRIPT`` for every
request (the mod_cgi row of the seed's table), so it imports as little as it can: the loader and
wsgiref's CGIHandler, nothing of the server. ``python -m pywsgi.cgi`` runs the same code.
"""
import sys


def main(argv=None):
    args = list(sys.argv[1:] if argv is None else argv)
    callable_name = "application"
    if len(args) == 3 and args[0] == "--callable-object":
        callable_name = args[1]
        args = args[2:]
    if len(args) != 1 or args[0].startswith("-"):
        sys.stderr.write("usage: python -m pywsgi.cgi [--callable-object NAME] SCRIPT\n")
        return 2
    # Imported here: run by path, this file can import pywsgi only once __main__ below has put
    # the package's parent on sys.path.
    from pywsgi.errors import LoadError
    from pywsgi.loader import load_script
    try:
        app = load_script(args[0], callable_name)
    except LoadError as exc:
        sys.stderr.write("cannot load application: %s\n" % exc)
        sys.stderr.flush()
        message = b"500 Internal Server Error\n"
        sys.stdout.buffer.write(b"Status: 500 Internal Server Error\r\n"
                                b"Content-Type: text/plain\r\nContent-Length: "
                                + str(len(message)).encode() + b"\r\n\r\n" + message)
        sys.stdout.buffer.flush()
        return 1
    from wsgiref.handlers import CGIHandler
    CGIHandler().run(app)
    return 0


if __name__ == "__main__":
    # Run by path, sys.path[0] is this file's own folder (pywsgi/handlers): the parent of the
    # pywsgi package must come first instead, so that `pywsgi` is the package and no module
    # is found under the name of a file here (cgi, static, ...).
    import os
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0]) == here:
        sys.path[0] = os.path.dirname(os.path.dirname(here))
    raise SystemExit(main())
