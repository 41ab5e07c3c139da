"""The processes: the supervisor (arbiter.py, gunicorn's arbiter), a child's life (worker.py),
and what the master prepares for them: the listening sockets, the pid file, --user/--group,
--reload-on-changes, the open-file limit (sockets.py, pidfile.py, privileges.py, reloader.py,
open_files.py; startup.py runs them in order)."""
