"""The benchmark harness still works (issue 4, Deliver 4): `loadtests/bench.py --smoke` starts pywsgi,
drives a real load generator against it over loopback and writes its table. No thresholds: speed is
never asserted, only that the harness produced a pywsgi row with a positive rate."""
import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH = REPO_ROOT / 'loadtests' / 'bench.py'


@pytest.mark.timeout(240)
def test_bench_smoke_writes_a_table_with_a_pywsgi_row(tmp_path):
    if shutil.which('wrk') is None and shutil.which('ab') is None:
        pytest.skip('neither wrk nor ab is installed: `loadtests/install_peers.sh --tools-only` '
                    '(CI installs them)')
    out = tmp_path / 'results'
    result = subprocess.run(
        [sys.executable, str(BENCH), '--smoke', '--out', str(out),
         # pywsgi as installed for these tests, not the bench venv's copy; no peers needed.
         '--pywsgi-python', sys.executable, '--venv', str(tmp_path / 'no-bench-venv')],
        cwd=str(tmp_path), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=200)
    assert result.returncode == 0, result.stdout + result.stderr

    table = out / 'results.md'
    assert table.exists(), result.stdout
    pywsgi_rows = [line for line in table.read_text().splitlines()
                   if line.startswith('| pywsgi | embedded-1x1 |')]
    assert pywsgi_rows, table.read_text()
    for line in pywsgi_rows:
        requests_per_second = float(line.split('|')[3])
        assert requests_per_second > 0, line

    with open(out / 'results.csv', newline='') as f:
        rows = [row for row in csv.DictReader(f) if row['server'] == 'pywsgi']
    assert rows and all(float(row['rps']) > 0 for row in rows), rows


def test_pywsgi_python_may_be_relative_and_a_missing_one_is_refused(tmp_path):
    """`--pywsgi-python .venv/bin/python` names a file in the current directory, although the
    harness checks and starts pywsgi from elsewhere; a path that is no executable is a usage
    error (exit 2), not a list of configurations that "cannot run"."""
    relative = os.path.relpath(sys.executable, tmp_path)
    listed = subprocess.run(
        [sys.executable, str(BENCH), '--list', '--pywsgi-python', relative,
         '--venv', str(tmp_path / 'no-bench-venv')],
        cwd=str(tmp_path), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    embedded = [line for line in listed.stdout.splitlines() if line.startswith('embedded-1x1 ')]
    assert embedded and 'available' in embedded[0] and 'not importable' not in embedded[0], \
        listed.stdout

    missing = subprocess.run(
        [sys.executable, str(BENCH), '--list', '--pywsgi-python', 'no/such/python'],
        cwd=str(tmp_path), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2
    assert 'no/such/python: no such executable' in missing.stderr


@pytest.mark.timeout(240)
def test_bench_smoke_runs_the_pipelined_and_flask_rows(tmp_path):
    """Issue 19's rows: wrk with 16 pipelined requests per write, and the Flask app (when this
    Python has Flask) - each a pywsgi row with a positive rate."""
    if shutil.which('wrk') is None:
        pytest.skip('wrk is not installed: `loadtests/install_peers.sh --tools-only`')
    servers, tools = 'embedded-1x1', 'wrk-pipelined'
    try:
        import flask  # noqa: F401
        servers, tools = servers + ',flask-embedded-1x1', tools + ',wrk-flask'
    except ImportError:
        pass
    out = tmp_path / 'results'
    result = subprocess.run(
        [sys.executable, str(BENCH), '--smoke', '--out', str(out), '--servers', servers,
         '--tools', tools, '--pywsgi-python', sys.executable,
         '--venv', str(tmp_path / 'no-bench-venv')],
        cwd=str(tmp_path), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=200)
    assert result.returncode == 0, result.stdout + result.stderr
    with open(out / 'results.csv', newline='') as f:
        measured = {(row['config'], row['tool']): float(row['rps'] or 0)
                    for row in csv.DictReader(f)}
    expected = {('embedded-1x1', 'wrk-pipelined')}
    if 'flask' in servers:
        expected.add(('flask-embedded-1x1', 'wrk-flask'))
    assert set(measured) == expected, measured
    assert all(rate > 0 for rate in measured.values()), measured
