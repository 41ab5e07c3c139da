"""``--apache-config``: an Apache + mod_wsgi configuration read as settings of the one table.
syntax.py parses the files, translate.py maps the directives to settings (``read()``)."""
