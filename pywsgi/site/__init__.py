"""The site: the mounts a server serves (mounts.py), planned from the settings in the master
(plan.py) and loaded in each serving process (load.py)."""
