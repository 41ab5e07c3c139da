#!/usr/bin/env python3
# The seed's mod_cgi row: ../myapp.wsgi run as a CGI program, a new Python process per request
# (Apache: `ScriptAlias /cgi-myapp /path/to/myapp.cgi`; pywsgi: --cgi-alias /cgi-bin DIR serves it
# too, and --cgi-script /cgi-myapp=myapp.wsgi does the same without this wrapper).
# Named .cgi, not .py: `locust -f loadtests/` imports every .py file under loadtests/.
import os
import runpy
from wsgiref.handlers import CGIHandler

script = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'myapp.wsgi')
CGIHandler().run(runpy.run_path(script)['application'])
