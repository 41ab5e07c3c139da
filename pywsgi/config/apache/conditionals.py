"""Which parts of an Apache configuration apply: the modules pywsgi counts as loaded
(``<IfModule>``), the conditional sections evaluated, nested blocks flattened. Used by
translate.py; syntax.py gives the tree of ``Directive`` these walk."""
from __future__ import annotations

from typing import Iterator, List

from pywsgi.config.apache.syntax import Directive

# <IfModule> sections pywsgi evaluates as true: the modules whose directives it carries over.
MODULES = {
    "wsgi", "alias", "dir", "mime", "authz_core", "authz_host", "access_compat", "cgi", "cgid",
    "log_config", "reqtimeout", "python", "mpm_event", "mpm_worker", "mpm_prefork", "unixd",
    "core", "so", "http", "authn_core", "version", "ssl", "headers",
}


def module_name(arg: str) -> str:
    """'mod_wsgi.c' / 'wsgi_module' / 'mod_wsgi' -> 'wsgi'."""
    name = arg.strip().lower()
    for suffix in (".c", "_module"):
        if name.endswith(suffix):
            name = name[:-len(suffix)]
    if name.startswith("mod_"):
        name = name[4:]
    return name


def module_enabled(arg: str) -> bool:
    """<IfModule arg> is true: a module whose directives pywsgi carries over."""
    return module_name(arg) in MODULES


def flatten(directives: List[Directive]) -> List[Directive]:
    result = []
    for d in directives:
        result.append(d)
        if d.children:
            result.extend(flatten(d.children))
    return result


def flatten_conditionals(directives: List[Directive]) -> Iterator[Directive]:
    """The directives of a block with its <IfModule>/<IfDefine>/<IfVersion> evaluated."""
    for d in directives:
        if d.children is None:
            yield d
        elif d.key in ("ifmodule", "ifdefine", "ifversion"):
            arg = d.args[0] if d.args else ""
            if d.key == "ifmodule":
                taken = module_enabled(arg.lstrip("!")) != arg.startswith("!")
            elif d.key == "ifdefine":
                taken = arg.startswith("!")
            else:
                taken = True
            if taken:
                yield from flatten_conditionals(d.children)
        # other nested sections were reported by check_block
