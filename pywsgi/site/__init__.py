"""The site: the mounts a server serves, each of an explicit kind (mounts.py), planned from the
settings in the master (plan.py), loaded in each serving process (load.py), and the one Python
router and path normaliser for internal redirects (routing.py). mounts.py and routing.py import
nothing of pywsgi, so the handlers and mod_python may use them."""
