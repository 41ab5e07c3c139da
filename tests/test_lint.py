"""The lint settings of pyproject.toml hold: ruff over the code, the tests and the load tests, and
mypy over the settings package ([tool.mypy] files). Both come with the `test` extra, so the README's
test command (and CI) checks them."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*args):
    return subprocess.run([sys.executable, '-m', *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_ruff_finds_nothing():
    result = run('ruff', 'check', '--no-cache', 'pywsgi', 'tests', 'loadtests')
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_finds_nothing_in_the_settings():
    result = run('mypy')
    assert result.returncode == 0, result.stdout + result.stderr
