"""The `pywsgi` command. Its options are built from the settings table (config/settings.py).

    pywsgi myapp.wsgi                       serve a script (its `application`)
    pywsgi pkg.module:app                   serve an importable object
    pywsgi --script-alias /a=a.wsgi ...     mount several applications (WSGIScriptAlias)
    pywsgi --document-root htdocs           static files (plus --url-alias, --handler-scripts,
                                            --cgi-alias, --cgi-script, --access)
    pywsgi --apache-config httpd.conf       read an Apache + mod_wsgi configuration

Every startup error — a bad option value, a missing script, a script without the callable, a port
in use — is one line on stderr and exit code 2. Options are never abbreviated (--thread is an
error, not --threads); an unknown one is answered with the pywsgi option to use: the nearest flag,
or the counterpart of a gunicorn / uWSGI / waitress / mod_wsgi-express spelling (cli_hints.py).
`--help` lists the options in the sections of config.HELP_SECTIONS.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from pywsgi import cli_hints, config
from pywsgi.config import sources
from pywsgi.errors import EXIT_OK, EXIT_USAGE, ConfigError, StartupError
from pywsgi.process.arbiter import run
from pywsgi.site.plan import plan_mounts
from pywsgi.version import __version__

__all__ = ["main", "build_parser"]

PROG = "pywsgi"


USAGE = f"{PROG} [OPTIONS] [SCRIPT | MODULE:APP]"
_OTHER_OPTIONS = "other options"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str, see_help: bool = True) -> None:
        # one line, not argparse's usage + error
        where = f" (see {self.prog} --help)" if see_help else ""
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}{where}\n")

    def parse_args(self, args=None, namespace=None):
        """argparse's, but an unknown option is named with a hint (cli_hints.py) before argparse
        reads the values, and a second SCRIPT says how to mount several."""
        args = list(sys.argv[1:] if args is None else args)
        known = set(self._option_string_actions)
        for index, token in enumerate(args):
            if token == "--":
                break
            if not cli_hints.looks_like_option(token) or token in known \
                    or token.partition("=")[0] in known or token[:2] in known:
                continue
            following = args[index + 1] if index + 1 < len(args) else None
            message, names_the_option = cli_hints.unknown_option_message(token, following, known)
            self.error(message, see_help=not names_the_option)
        namespace, extras = self.parse_known_args(args, namespace)
        if extras:
            self.error(f"unexpected argument {extras[0]!r}: give one SCRIPT | MODULE:APP, and "
                       f"mount more with --script-alias /URL=PATH")
        return namespace


def _argparse_type(setting: config.Setting):
    # A repeatable flag is checked one use at a time here (the list as a whole in config.build).
    convert = (setting.item_convert or str) if setting.repeatable else setting.convert

    def parse(text: str):
        try:
            return convert(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    parse.__name__ = setting.name  # argparse names the type in some messages
    return parse


def _help_text(setting: config.Setting) -> str:
    text = setting.help
    if setting.default not in (None, "", ()) and setting.const is None and "Default" not in text:
        text += f" Default: {setting.default}."
    if setting.express and setting.express != setting.flag:
        text += f" (mod_wsgi-express: {setting.express})"
    return text.replace("%", "%%")


def _add_setting(group, setting: config.Setting) -> None:
    if setting.const is not None:  # a switch: --follow-symlinks, --no-precompressed
        group.add_argument(setting.flag, *setting.aliases, dest=setting.name,
                           action="store_const", const=setting.const, help=_help_text(setting))
        return
    kwargs = dict(dest=setting.name, metavar=setting.metavar, help=_help_text(setting))
    if setting.nargs is not None:
        kwargs["nargs"] = setting.nargs  # the words reach config.build as a list
    else:
        kwargs["type"] = _argparse_type(setting)
    if setting.repeatable:
        kwargs["action"] = "append"
    group.add_argument(setting.flag, *setting.aliases, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    """The options of the settings table, one --help section per topic (config.HELP_SECTIONS).
    No abbreviations: --thread is not --threads (it is an error that suggests it)."""
    parser = _Parser(
        prog=PROG, usage=USAGE, add_help=False, allow_abbrev=False,
        formatter_class=lambda prog: argparse.HelpFormatter(prog, max_help_position=30),
        description="Serve Python WSGI applications the way Apache + mod_wsgi does.",
        epilog="Examples: pywsgi myapp.wsgi --port 8000 | pywsgi pkg.module:app --processes 4 "
               "--threads 5 | pywsgi --script-alias /a=a.wsgi --script-alias /b=b.wsgi. "
               "Every setting can also come from a TOML file (--config) or a PYWSGI_* "
               "environment variable: docs/configuration.md.",
        argument_default=argparse.SUPPRESS,
    )
    # "title (about):" on one line; argparse's description paragraph would add two per section
    groups = {title: parser.add_argument_group(f"{title} ({about})")
              for title, about, _ in config.HELP_SECTIONS}
    section_of = {name: title for title, _, names in config.HELP_SECTIONS for name in names}
    groups["serving"].add_argument(
        "target", nargs="?", metavar="SCRIPT | MODULE:APP",
        help="WSGI script file (any extension, e.g. myapp.wsgi or app.py) loaded the way mod_wsgi "
             "loads it, or pkg.module:app to import. Without one, a welcome page is served.")
    general = groups["configuration"]
    general.add_argument("-h", "--help", action="help", help="Show this help and exit.")
    general.add_argument("--version", action="version", version=f"{PROG} {__version__}",
                         help="Show the version and exit.")
    general.add_argument(
        "--config", metavar="FILE",
        help="Read settings from this TOML file (keys are the setting names, e.g. port = 8000; "
             "'application' is the SCRIPT | MODULE:APP; relative paths resolve against the "
             "file's directory). The command line wins over PYWSGI_* environment variables, "
             "which win over the file. Default: $PYWSGI_CONFIG. See docs/configuration.md.")
    general.add_argument(
        "--print-config", action="store_true",
        help="Print the resulting settings (from every source) as TOML that --config reads "
             "back, and exit without serving.")
    listed = [config.SETTINGS_BY_NAME[name] for _, _, names in config.HELP_SECTIONS
              for name in names if name in config.SETTINGS_BY_NAME]
    unlisted = [setting for setting in config.SETTINGS if setting.name not in section_of]
    for setting in listed + unlisted:  # a section lists its settings in HELP_SECTIONS' order
        if setting.flag is None:
            continue
        title = section_of.get(setting.name, _OTHER_OPTIONS)
        if title not in groups:
            groups[title] = parser.add_argument_group(title)
        _add_setting(groups[title], setting)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    try:
        namespace = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    values = vars(namespace)
    target = values.pop("target", None)
    config_path = values.pop("config", None) or os.environ.get(sources.ENV_CONFIG) or None
    print_config = values.pop("print_config", False)
    try:
        files = sources.apache_sources(values, os.environ)
        files += [sources.read_toml(config_path)] if config_path else []
        collected = sources.collect(values, target, environ=os.environ, files=files)
        settings = config.build(collected.values)
        if print_config:
            sys.stdout.write(sources.to_toml(collected))
            sys.stdout.flush()
            return EXIT_OK
        mounts = plan_mounts(settings, script=collected.application)
        return run(settings, mounts)
    except (ConfigError, StartupError) as exc:
        sys.stderr.write(f"{PROG}: error: {exc}\n")
        sys.stderr.flush()
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
