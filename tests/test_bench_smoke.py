"""The benchmark harness still works (issue 4, Deliver 4): `loadtests/bench.py --smoke` starts pywsgi,
drives a real load generator against it over loopback and writes its table. No thresholds: speed is
never asserted, only that the harness produced a pywsgi row with a positive rate."""
import csv
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
