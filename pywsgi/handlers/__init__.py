"""What serves a mount besides a WSGI application of the user's: static files (served from C by
the core), handler scripts (*.wsgi files under a directory), CGI programs, the welcome page, and
the Apache-style access rules the core checks first."""
