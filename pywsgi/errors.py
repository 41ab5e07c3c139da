"""The errors every layer of pywsgi raises, and the exit codes they become.

A leaf module: it imports nothing of pywsgi, so the settings table, the loader, the planners and
the supervisor all raise the same classes without importing each other. Each message is one line
for the user; the command line prints it and exits with EXIT_USAGE.
"""
from __future__ import annotations

__all__ = ["ConfigError", "StartupError", "LoadError", "EXIT_OK", "EXIT_USAGE", "EXIT_LOAD_FAILED"]

EXIT_OK = 0
EXIT_USAGE = 2            # the master's exit code for every startup error
EXIT_LOAD_FAILED = 3      # a child's exit code when the application could not be loaded


class ConfigError(ValueError):
    """A setting has a bad value or an unknown name; the message names the setting."""


class StartupError(Exception):
    """The server cannot start; str(exc) is one line for the user (the CLI exits with 2)."""


class LoadError(Exception):
    """The application could not be loaded; str(exc) is one line for the user."""
