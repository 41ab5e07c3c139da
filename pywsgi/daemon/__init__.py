"""Daemon mode (mod_wsgi's WSGIDaemonProcess): a group's options, planning which mounts each
group serves, a group's processes, and recycling them. docs/daemon-mode.md."""
