#!/usr/bin/env python
"""Django's manage.py for the test site (tests/test_real_apps.py runs migrate, createsuperuser and
collectstatic with it)."""
import os
import sys

if __name__ == '__main__':
    os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'realsite.settings')
    from django.core.management import execute_from_command_line
    execute_from_command_line(sys.argv)
