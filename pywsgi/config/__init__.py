"""The settings: the one table (settings.py) and its converters (convert.py), where values come
from (sources.py: command line, PYWSGI_* variables, TOML files; apache/: --apache-config), and a
daemon process group's options (daemon_groups.py).

The table's names are re-exported here: ``pywsgi.config.SETTINGS`` and
``pywsgi.config.ConfigError`` are where docs/configuration.md names them. Modules inside this
package import from the submodules, never from here.
"""
from pywsgi.config.settings import (
    HELP_SECTIONS,
    SETTINGS,
    SETTINGS_BY_NAME,
    ConfigError,
    Setting,
    Settings,
    build,
    close_match,
    defaults,
)

__all__ = ["HELP_SECTIONS", "SETTINGS", "SETTINGS_BY_NAME", "ConfigError", "Setting", "Settings",
           "build", "close_match", "defaults"]
