"""The Locust scenarios work (issue 8): loadtests/locustfile.py runs headless for 10 seconds against
pywsgi serving the example site (loadtests/site/, the two servers loadtests/site/serve.sh starts),
with every User class (each row of the seed's table and the realistic mixes): requests were made,
every scenario made some, and none failed. A second, short run selects rows by tag with Locust's
--processes (as loadtests/table.py runs it). No speed is asserted."""
import csv
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from serverproc import free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = REPO_ROOT / 'loadtests' / 'locustfile.py'
SITE = REPO_ROOT / 'loadtests' / 'site'

# Request names the locustfile gives, one per scenario (page assets are named after their path).
ROWS = ['static /index.html', 'embedded /myapp/', 'daemon /myapp/', 'handler /handlers/app.wsgi',
        'cgi /cgi-myapp/', 'mod_python /mpapp/']
MIXES = ['page /page.html', 'page asset /static/style.css', 'upload /mix/upload',
         'slow /mix/slow?ms=200', 'cgi-bin /cgi-bin/myapp.cgi']


@pytest.fixture(scope='module')
def site_servers(start_module_server):
    # find_spec, not import: importing locust monkey-patches this process with gevent.
    if importlib.util.find_spec('locust') is None:
        pytest.skip('locust is not installed: pip install locust (it is in the `test` extra)')
    embedded = start_module_server(
        '--document-root', SITE / 'htdocs',
        '--script-alias', '/myapp=%s' % (SITE / 'myapp.wsgi'),
        '--script-alias', '/mix=%s' % (SITE / 'mix.wsgi'),
        '--url-alias', '/handlers', SITE / 'handlers', '--handler-scripts',
        '--cgi-alias', '/cgi-bin', SITE / 'cgi-bin',
        '--cgi-script', '/cgi-myapp=%s' % (SITE / 'myapp.wsgi'),
        '--python-path', SITE / 'modpython', '--mod-python-shim',
        '--python-handler', '/mpapp=_hello')
    daemon = start_module_server(SITE / 'myapp.wsgi', '--mount-point', '/myapp',
                                 '--daemon', '--processes', '2', '--threads', '15')
    for server, path in ((embedded, '/index.html'), (embedded, '/myapp/'), (daemon, '/myapp/')):
        response, _ = server.get(path)
        assert response.status == 200, (server, path)
    return embedded, daemon


def run_locust(site_servers, tmp_path, *options):
    """Locust headless against the two servers; returns ({request name: stats line}, output)."""
    embedded, daemon = site_servers
    prefix = tmp_path / 'locust'
    result = subprocess.run(
        [sys.executable, '-m', 'locust', '-f', str(LOCUSTFILE), '--headless',
         '--host', embedded.url, '--daemon-host', daemon.url, '--csv', str(prefix),
         '--only-summary', '--stop-timeout', '5'] + list(options),
        cwd=str(tmp_path), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=150)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    with open('%s_stats.csv' % prefix, newline='') as f:
        return {line['Name']: line for line in csv.DictReader(f)}, output


@pytest.mark.timeout(180)
def test_every_scenario_for_10_seconds_has_requests_and_no_failures(site_servers, tmp_path):
    stats, output = run_locust(site_servers, tmp_path, '-u', '20', '-r', '20', '-t', '10s')
    total = stats['Aggregated']
    assert int(total['Request Count']) > 0, output
    assert int(total['Failure Count']) == 0, output
    missing = [name for name in ROWS + MIXES
               if name not in stats or int(stats[name]['Request Count']) == 0]
    assert not missing, 'scenarios without requests: %s\n%s' % (missing, output)


@pytest.mark.timeout(120)
def test_tags_select_rows_with_locust_worker_processes(site_servers, tmp_path):
    # Locust's master and its worker processes talk over TCP (5557 unless told): a free port on
    # the loopback, so two runs on one machine cannot collide.
    port = str(free_port())
    stats, output = run_locust(site_servers, tmp_path, '-u', '10', '-r', '10', '-t', '3s',
                               '--processes', '2', '--tags', 'row', '--exclude-tags', 'cgi',
                               '--master-bind-host', '127.0.0.1', '--master-bind-port', port,
                               '--master-host', '127.0.0.1', '--master-port', port)
    assert int(stats['Aggregated']['Failure Count']) == 0, output
    names = set(stats) - {'Aggregated'}
    assert names == set(ROWS) - {'cgi /cgi-myapp/'}, output


@pytest.mark.timeout(120)
def test_locust_takes_the_whole_loadtests_directory(tmp_path):
    # locustfile.py's docstring says `-f loadtests/` works: every module there imports cleanly
    # outside Apache, and the User classes are found once each.
    if importlib.util.find_spec('locust') is None:
        pytest.skip('locust is not installed: pip install locust (it is in the `test` extra)')
    result = subprocess.run(
        [sys.executable, '-m', 'locust', '-f', str(LOCUSTFILE.parent), '--list'],
        cwd=str(tmp_path), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=100)
    assert result.returncode == 0, result.stdout + result.stderr
    listed = result.stdout.split()
    for user_class in ('StaticUser', 'EmbeddedUser', 'DaemonUser', 'HandlerScriptUser', 'CgiUser',
                       'ModPythonUser', 'PageWithAssetsUser', 'UploadUser', 'SlowEndpointUser',
                       'CgiBinUser'):
        assert listed.count(user_class) == 1, (user_class, result.stdout)
