"""`python -m pywsgi ...` is the same as the `pywsgi` command."""
from pywsgi.cli import main

raise SystemExit(main())
