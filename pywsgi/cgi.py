"""``python -m pywsgi.cgi [--callable-object NAME] SCRIPT``: run a WSGI script once as a CGI
program (docs/static-cgi-handlers.md), usable from any CGI-capable server too. The CGI handlers
of the server are pywsgi/handlers/cgi.py; this is only the documented command."""
import sys

from pywsgi.handlers._cgi_child import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
