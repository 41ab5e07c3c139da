"""Access rules (issue 5, point 4): the <Directory> block's Order/Allow/Deny (Apache 2.2) and
Require (2.4) lines, per mount (--access MOUNT=RULES), answered 403 by the core for app, static,
handler-script and CGI mounts alike. The parser and the decisions first, then real servers."""
import subprocess
import sys

import pytest

from pywsgi.handlers.access import AccessRules, parse_network
from serverproc import APPS_DIR, SUITE_APP, free_port

# ------------------------------------------------------------------ decisions (no server)

@pytest.mark.parametrize('rules, address, allowed', [
    # no rules: everyone
    ('', '10.0.0.1', True),
    # Order allow,deny: denied unless allowed; a matching Deny wins
    ('Order allow,deny; Allow from 127.0.0.1', '127.0.0.1', True),
    ('Order allow,deny; Allow from 127.0.0.1', '127.0.0.2', False),
    ('Order allow,deny', '127.0.0.1', False),
    ('Order allow,deny; Allow from all; Deny from 127.0.0.0/8', '127.0.0.1', False),
    ('Order allow,deny; Allow from all; Deny from 127.0.0.0/8', '10.0.0.1', True),
    ('Order allow,deny; Allow from 10.0.0.0/8; Deny from 10.1', '10.1.2.3', False),
    # Order deny,allow: allowed unless denied; a matching Allow wins
    ('Order deny,allow; Deny from all; Allow from 127.0.0.1', '127.0.0.1', True),
    ('Order deny,allow; Deny from all; Allow from 127.0.0.1', '192.168.1.1', False),
    ('Order deny,allow', '192.168.1.1', True),
    ('Order deny,allow; Deny from 192.168', '192.168.7.7', False),
    ('Order deny,allow; Deny from 192.168.', '192.169.7.7', True),
    ('Order Deny,Allow; Deny from 10.0.0.0/255.0.0.0', '10.9.9.9', False),
    ('Deny from all', '127.0.0.1', False),  # Apache's default Order is deny,allow
    ('Order mutual-failure; Allow from 10.0.0.0/8; Deny from 10.0.0.1', '10.0.0.1', False),
    ('Order mutual-failure; Allow from 10.0.0.0/8; Deny from 10.0.0.1', '10.0.0.2', True),
    # Require (2.4): any one granting line allows
    ('Require all granted', '203.0.113.9', True),
    ('Require all denied', '127.0.0.1', False),
    ('Require ip 127.0.0.1', '127.0.0.1', True),
    ('Require ip 127.0.0.1', '127.0.0.2', False),
    ('Require ip 10.0.0.0/8 192.168', '192.168.0.9', True),
    ('Require ip 10.0.0.0/8\nRequire ip 172.16', '172.16.1.1', True),
    ('Require local', '127.0.0.5', True),
    ('Require local', '::1', True),
    ('Require local', '10.0.0.1', False),
    ('Require all granted; Require not ip 10.0.0.1', '10.0.0.1', False),
    ('Require all granted; Require not ip 10.0.0.1', '10.0.0.2', True),
    # IPv6 and IPv4-mapped clients
    ('Require ip 2001:db8::/32', '2001:db8::1', True),
    ('Require ip 2001:db8::/32', '2001:db9::1', False),
    ('Require ip 127.0.0.1', '::ffff:127.0.0.1', True),
    ('Order allow,deny; Allow from ::1', '::1', True),
    # both generations: the client must pass both
    ('Order allow,deny; Allow from all; Require ip 10.0.0.0/8', '10.0.0.1', True),
    ('Order allow,deny; Allow from all; Require ip 10.0.0.0/8', '11.0.0.1', False),
    ('Order deny,allow; Deny from 10.0.0.1; Require all granted', '10.0.0.1', False),
    # an unparsable client address is denied once any rule is set
    ('Require all granted', 'not-an-address', False),
    # comments and blank lines are ignored
    ('# office only\n\nRequire ip 10.0.0.0/8\n', '10.5.5.5', True),
])
def test_decisions(rules, address, allowed):
    assert AccessRules.parse(rules).allows(address) is allowed


@pytest.mark.parametrize('line', [
    'Order allow',
    'Allow 127.0.0.1',
    'Allow from',
    'Deny from example.com',
    'Allow from env=let_me_in',
    'Require host example.com',
    'Require valid-user',
    'Require all maybe',
    'Require ip',
    'Require ip 300.1.1.1',
    'Options Indexes',
])
def test_bad_directives_are_refused(line):
    with pytest.raises(ValueError) as info:
        AccessRules.parse(line)
    assert line.split()[0] in str(info.value)


def test_partial_addresses_and_netmasks():
    assert str(parse_network('10')) == '10.0.0.0/8'
    assert str(parse_network('10.1')) == '10.1.0.0/16'
    assert str(parse_network('10.1.2.')) == '10.1.2.0/24'
    assert str(parse_network('10.1.0.0/255.255.0.0')) == '10.1.0.0/16'
    assert str(parse_network('192.168.1.7/24')) == '192.168.1.0/24'


def test_rules_for_one_mount_given_twice_are_joined():
    from pywsgi import config
    settings = config.build(access=['/a=Order deny,allow', '/a=Deny from all',
                                    '/a=Allow from 127.0.0.1'])
    (url, rules), = settings.access
    assert url == '/a'
    assert rules.allows('127.0.0.1') and not rules.allows('10.0.0.1')


# ------------------------------------------------------------------ real servers

@pytest.mark.parametrize('rules, status', [
    ('Order allow,deny; Allow from 127.0.0.1', 200),
    ('Order allow,deny; Allow from all; Deny from 127.0.0.0/8', 403),
    ('Order deny,allow; Deny from all; Allow from 127.0.0.1', 200),
    ('Order deny,allow; Deny from all; Allow from 10.0.0.0/8', 403),
    ('Require all denied', 403),
    ('Require ip 127.0.0.1', 200),
    ('Require local', 200),
    ('Require ip 192.0.2.0/24', 403),
])
def test_rules_on_an_app_mount(start_server, rules, status):
    server = start_server(SUITE_APP, '--access', '/=' + rules)
    mark = server.log_mark()
    response, _ = server.get('/env')
    assert response.status == status
    if status == 403:
        server.wait_for_log(r'127\.0\.0\.1:\d+: client denied by the access rules of /: 403',
                            since=mark)


def test_rules_per_mount_and_below_a_mount(start_server, tmp_path):
    files = tmp_path / 'files'
    (files / 'private').mkdir(parents=True)
    (files / 'public.txt').write_text('public\n')
    (files / 'private' / 'secret.txt').write_text('secret\n')
    cgi_dir = tmp_path / 'cgi'
    cgi_dir.mkdir()
    script = cgi_dir / 'hi.sh'
    script.write_text('#!/bin/sh\nprintf "Content-Type: text/plain\\n\\nhi"\n')
    script.chmod(0o755)
    server = start_server(
        '--script-alias', '/a=%s' % SUITE_APP,
        '--script-alias', '/b=%s' % (APPS_DIR / 'other.wsgi'),
        '--url-alias', '/files', files,
        '--cgi-alias', '/cgi-bin', cgi_dir,
        '--access', '/b=Require all denied',
        '--access', '/a/admin=Order deny,allow; Deny from all',
        '--access', '/a/env=Require ip 127.0.0.1',
        '--access', '/files/private=Require all denied',
        '--access', '/cgi-bin=Require all denied')

    assert server.get('/b/x')[0].status == 403
    assert server.get('/a/admin/env')[0].status == 403
    assert server.get('/files/private/secret.txt')[0].status == 403
    assert server.get('/files/public.txt')[1] == b'public\n'
    assert server.get('/cgi-bin/hi.sh')[0].status == 403

    # a sub-mount made for rules keeps the app's own SCRIPT_NAME / PATH_INFO split and group
    env = server.get_json('/a/env/x')
    assert (env['SCRIPT_NAME'], env['PATH_INFO']) == ('/a', '/env/x')
    assert env['mod_wsgi.application_group'].endswith('|/a')
    # /a/administrator is not below /a/admin (segment boundary)
    assert server.get('/a/administrator')[0].status == 404  # the suite's own 404, not 403


def test_rules_on_a_handler_script_directory(start_server, tmp_path):
    root = tmp_path / 'htdocs'
    root.mkdir()
    (root / 'app.wsgi').write_text(
        'def application(environ, start_response):\n'
        '    start_response("200 OK", [("Content-Type", "text/plain")])\n'
        '    return [b"handler"]\n')
    server = start_server('--document-root', root, '--handler-scripts',
                          '--access', '/=Order allow,deny; Allow from all; Deny from 127.0.0.1')
    assert server.get('/app.wsgi')[0].status == 403


def run_cli(*args):
    return subprocess.run([sys.executable, '-m', 'pywsgi', *map(str, args)], cwd=APPS_DIR,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize('value, mentions', [
    ('/=Allow from example.com', 'host names'),
    ('/=Require valid-user', 'valid-user'),
    ('no-equals-sign', 'MOUNT=RULES'),
    ('/nowhere/x=Require all denied', 'no mount serves'),
])
def test_bad_access_values_exit_2_with_one_line(value, mentions):
    result = run_cli('--script-alias', '/a=%s' % SUITE_APP, '--access', value,
                     '--port', free_port())
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert mentions in lines[0]
