"""Daemon mode (mod_wsgi's WSGIDaemonProcess): planning which mounts each group serves, a
group's processes, and recycling them (docs/daemon-mode.md). A group's options are read with the
settings, in pywsgi/config/daemon_groups.py."""
