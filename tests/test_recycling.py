"""--maximum-requests / maximum-requests=: a process is recycled after N requests, and no request
is lost while it is replaced."""
from pathlib import Path

import pytest

DAEMON_APP = Path(__file__).resolve().parent / 'apps' / 'daemon_app.py'


@pytest.mark.parametrize('args', [
    ('--maximum-requests', '5', '--threads', '1'),
    ('--maximum-requests', '5', '--threads', '4'),
    ('--daemon-process', 'g:processes=1,threads=2,maximum-requests=5', '--process-group', 'g'),
], ids=['embedded-inline', 'embedded-threads', 'daemon'])
def test_processes_are_recycled_without_losing_requests(start_server, args):
    server = start_server(DAEMON_APP, *args)
    pids = []
    for index in range(40):
        response, body = server.get('/pid')
        assert response.status == 200, (index, response.status, body[:200])
        pids.append(response.getheader('X-Pid'))
    # 40 requests, a new process at most every 5 (+10 % jitter) requests
    assert len(set(pids)) >= 4, pids
    assert 'recycling this process' in server.stderr_text()
