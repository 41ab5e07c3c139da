"""``pywsgi.static.StaticFiles``, as docs/static-files.md names it; the code is
pywsgi/handlers/static.py."""
from pywsgi.handlers.static import StaticFiles, content_types

__all__ = ["StaticFiles", "content_types"]
