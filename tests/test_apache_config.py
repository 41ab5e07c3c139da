"""Apache configuration import (issue 7, point 2): `pywsgi --apache-config httpd.conf`.

The syntax and the translation first (no server), then real servers answering over real sockets:
the seed's two mod_wsgi snippets (tests/apache/seed_*.conf, copied byte for byte from
/work/shared/seed/wsgi-apache-modwsgi.md) served unchanged, a site of the usual shape
(tests/apache/site/), and name-based virtual hosts (tests/apache/vhosts.conf). The snippets name
/var/www/... and /srv/...: the tests build that tree under a temporary directory and point
--apache-root at it, as a user moving a site to a new machine would.
"""
import json
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pywsgi.config.apache import syntax, translate
from pywsgi.config.apache.syntax import ApacheConfigError
from serverproc import APPS_DIR, EXAMPLE_APP, free_port, wait_until

FIXTURES = Path(__file__).resolve().parent / 'apache'


def write(path, text, mode=None):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    if mode is not None:
        path.chmod(mode)
    return path


def read_conf(tmp_path, text, root=None):
    conf = write(tmp_path / 'httpd.conf', text)
    return translate.read(str(conf), root)


# ------------------------------------------------------------------ syntax

def test_syntax_continuations_quotes_comments_sections(tmp_path):
    conf = write(tmp_path / 'httpd.conf', '''\
        # a comment
          LoadModule wsgi_module modules/mod_wsgi.so
        wsgiscriptalias /a \\
            "/srv/my app/a.wsgi"
        <Directory '/srv/my app'>
            <IfModule mod_wsgi.c>
                Require all granted
            </IfModule>
        </directory>
        ''')
    top = syntax.parse(str(conf))
    assert [d.name for d in top] == ['LoadModule', 'wsgiscriptalias', 'Directory']
    alias = top[1]
    assert alias.key == 'wsgiscriptalias' and alias.args == ['/a', '/srv/my app/a.wsgi']
    assert alias.line == 3
    section = top[2]
    assert section.args == ['/srv/my app'] and section.children[0].key == 'ifmodule'
    assert section.children[0].children[0].args == ['all', 'granted']


@pytest.mark.parametrize('text, message', [
    ('<Directory /x>\nRequire all granted\n', 'httpd.conf:1: <Directory> is never closed'),
    ('<Directory /x>\n</Location>\n', 'httpd.conf:2: </Location> closes <Directory>'),
    ('</Directory>\n', 'httpd.conf:1: </Directory> without matching'),
    ('Alias /x "/unterminated\n', 'httpd.conf:1: unterminated quoted argument'),
    ('Include conf.d/*.conf\n', 'httpd.conf:1: Include conf.d/*.conf: no file matches'),
    ('Include missing.conf\n', 'httpd.conf:1: Include missing.conf: no such file'),
])
def test_syntax_errors_name_file_and_line(tmp_path, text, message):
    with pytest.raises(ApacheConfigError) as info:
        read_conf(tmp_path, text)
    assert str(info.value).endswith(message) or message in str(info.value)
    assert str(info.value).startswith(str(tmp_path / 'httpd.conf') + ':')


def test_include_globs_relative_to_server_root_in_name_order(tmp_path):
    (tmp_path / 'srv/a').mkdir(parents=True)
    (tmp_path / 'srv/b').mkdir(parents=True)
    write(tmp_path / 'etc/apache2/sites/20-b.conf', 'Alias /b /srv/b\n')
    write(tmp_path / 'etc/apache2/sites/10-a.conf', 'Alias /a /srv/a\nIncludeOptional nope/*.conf\n')
    raw, target, warnings = read_conf(tmp_path, '''\
        ServerRoot /etc/apache2
        Include sites/*.conf
        ''', root=str(tmp_path))
    assert target is None and warnings == []
    assert raw['url_alias'] == ['/a=%s/srv/a' % tmp_path, '/b=%s/srv/b' % tmp_path]


def test_include_loop_is_an_error(tmp_path):
    write(tmp_path / 'other.conf', 'Include httpd.conf\n')
    with pytest.raises(ApacheConfigError, match='Include loop'):
        read_conf(tmp_path, 'Include other.conf\n')


# ------------------------------------------------------------------ translation

def test_seed_snippets_translate_to_the_expected_settings(tmp_path):
    raw, _, warnings = translate.read(str(FIXTURES / 'seed_wsgiscriptalias.conf'), str(tmp_path))
    script = '%s/var/www/wsgi-scripts/myapp.wsgi' % tmp_path
    assert warnings == []
    assert raw == {'script_alias': ['/myapp=' + script],
                   'access': ['/myapp=Order allow,deny; Allow from all']}
    raw, _, warnings = translate.read(str(FIXTURES / 'seed_daemon.conf'), str(tmp_path))
    assert warnings == []
    assert raw['daemon_process'] == ['example.com:processes=2,threads=15,display-name=%{GROUP}']
    assert raw['process_group'] == 'example.com'
    assert raw['script_alias'] == ['/myapp=' + script]


def test_core_directives_map_to_settings(tmp_path):
    raw, _, warnings = read_conf(tmp_path, '''\
        Listen 10.0.0.1:8080
        ServerName www.example.com:80
        Timeout 30
        KeepAliveTimeout 4
        LimitRequestBody 1048576
        LogLevel notice
        LogFormat "%h %r %>s" short
        CustomLog /var/log/access.log short
        WSGICallableObject app
        WSGIApplicationGroup %{GLOBAL}
        DirectoryIndex index.htm index.html
        ''')
    assert raw['host'] == '10.0.0.1' and raw['port'] == '8080'
    assert raw['server_name'] == 'www.example.com'
    assert raw['socket_timeout'] == '30' and raw['keep_alive_timeout'] == '4'
    assert raw['limit_request_body'] == '1048576' and raw['log_level'] == 'info'
    assert raw['access_log'] == '/var/log/access.log'
    assert raw['access_log_format'] == '%h %r %>s'
    assert raw['callable_object'] == 'app' and raw['application_group'] == '%{GLOBAL}'
    assert raw['directory_index'] == 'index.htm'
    assert warnings == ['%s:11: DirectoryIndex: only the first name (index.htm) is used; '
                        'index.html ignored' % (tmp_path / 'httpd.conf')]


def test_unsupported_directives_are_reported_once_with_file_and_line(tmp_path):
    raw, _, warnings = read_conf(tmp_path, '''\
        LoadModule wsgi_module modules/mod_wsgi.so
        User www-data
        WSGIRestrictEmbedded On
        WSGIDaemonProcess site processes=2 threads=4 inactivity-timeout=60 deadlock-timeout=60 lang=C.UTF-8
        WSGIScriptAliasMatch ^/x(.*) /srv/x.wsgi
        <IfModule mod_proxy.c>
            Listen 8080
        </IfModule>
        ''')
    conf = tmp_path / 'httpd.conf'
    assert warnings == [
        '%s:3: WSGIRestrictEmbedded is not supported, ignored' % conf,
        '%s:4: WSGIDaemonProcess site: option deadlock-timeout is not supported, ignored' % conf,
        '%s:4: WSGIDaemonProcess site: option lang is not supported, ignored' % conf,
        '%s:5: WSGIScriptAliasMatch (regular-expression mounts) is not supported, ignored: use '
        'WSGIScriptAlias' % conf,
        '%s:6: <IfModule mod_proxy.c>: pywsgi has no such module; the section is skipped' % conf,
    ]
    assert len(warnings) == len(set(warnings))
    assert raw == {'daemon_process': ['site:processes=2,threads=4,inactivity-timeout=60']}


def test_directory_blocks_map_to_the_urls_that_serve_them(tmp_path):
    (tmp_path / 'srv/htdocs/private').mkdir(parents=True)
    (tmp_path / 'srv/media/secret').mkdir(parents=True)
    raw, _, _ = read_conf(tmp_path, '''\
        DocumentRoot /srv/htdocs
        Alias /media /srv/media
        WSGIScriptAlias /app /srv/wsgi/app.wsgi process-group=site
        WSGIDaemonProcess site
        <Directory />
            Require all denied
        </Directory>
        <Directory /srv/htdocs>
            Require all granted
        </Directory>
        <Directory /srv/htdocs/private>
            Require ip 10.0.0.0/8
        </Directory>
        <Directory /srv/wsgi>
            Require all granted
        </Directory>
        <Location /media/secret>
            Require local
        </Location>
        ''', root=str(tmp_path))
    assert set(raw['access']) == {'/=Require all granted', '/app=Require all granted',
                                  '/media=Require all denied', '/media/secret=Require local',
                                  '/private=Require ip 10.0.0.0/8'}
    # the one group named per mount is the server's group
    assert raw['process_group'] == 'site'


@pytest.mark.parametrize('text, message', [
    ('AddHandler cgi-script .cgi\n', 'httpd.conf:1: AddHandler cgi-script, but Options ExecCGI '
                                      'is on nowhere'),
    ('<Directory /srv>\nRequire valid-user\n</Directory>\n', 'httpd.conf:2: Require valid-user:'),
    ('<Location />\nAllow from example.com\n</Location>\n', 'httpd.conf:2: Allow from example.com'),
    ('<FilesMatch "^\\.ht">\nRequire all denied\n</FilesMatch>\n',
     'httpd.conf:1: <FilesMatch> sections are not supported, and it holds access rules'),
    ('<LocationMatch ^/adm>\nDeny from all\n</LocationMatch>\n',
     'httpd.conf:1: <LocationMatch> sections are not supported'),
    ('<Directory ~ "^/srv/.*">\nRequire ip 10.0.0.0/8\n</Directory>\n',
     'httpd.conf:1: <Directory ~ regex> is not supported'),
    ('<Directory /srv>\n<Files secret.txt>\nRequire all denied\n</Files>\n</Directory>\n',
     'httpd.conf:2: <Files> inside <Directory> is not supported'),
    ('DocumentRoot /srv/htdocs\n<Location /index.html>\nRequire all denied\n</Location>\n',
     'httpd.conf:2: access rules for the single file'),
])
def test_access_rules_that_cannot_be_carried_over_are_errors(tmp_path, text, message):
    write(tmp_path / 'srv/htdocs/index.html', 'home\n')
    with pytest.raises(ApacheConfigError) as info:
        read_conf(tmp_path, text, root=str(tmp_path))
    assert message in str(info.value)


def test_missing_document_root_and_alias_paths_are_reported_and_left_out(tmp_path):
    (tmp_path / 'srv/htdocs').mkdir(parents=True)
    raw, _, warnings = read_conf(tmp_path, '''\
        DocumentRoot /srv/htdocs
        Alias /icons/ "/usr/share/apache2/icons/"
        ScriptAlias /cgi-bin/ /usr/lib/cgi-bin/
        ''', root=str(tmp_path))
    assert raw == {'document_root': str(tmp_path / 'srv/htdocs')}
    conf = tmp_path / 'httpd.conf'
    assert warnings == [
        '%s:2: Alias /icons/ /usr/share/apache2/icons/: %s/usr/share/apache2/icons: no such file '
        'or directory, ignored' % (conf, tmp_path),
        '%s:3: ScriptAlias /cgi-bin/ /usr/lib/cgi-bin/: %s/usr/lib/cgi-bin: no such file or '
        'directory, ignored' % (conf, tmp_path)]


def test_blocks_for_what_is_not_served_apply_to_nothing(tmp_path):
    write(tmp_path / 'srv/htdocs/index.html', 'home\n')
    write(tmp_path / 'srv/favicon.ico', 'icon')
    raw, _, warnings = read_conf(tmp_path, '''\
        DocumentRoot /srv/htdocs
        Alias /favicon.ico /srv/favicon.ico
        <Location /server-status>
            SetHandler server-status
            Require local
        </Location>
        <Directory /srv/htdocs/not-there>
            Require all denied
        </Directory>
        <Directory /srv>
            Require ip 127.0.0.1
        </Directory>
        ''', root=str(tmp_path))
    assert set(raw['access']) == {'/=Require ip 127.0.0.1', '/favicon.ico=Require ip 127.0.0.1'}
    assert warnings == ['%s:4: SetHandler server-status is not supported, ignored'
                        % (tmp_path / 'httpd.conf')]


def test_virtual_hosts_translate_to_the_virtual_host_setting(tmp_path):
    (tmp_path / 'srv/a').mkdir(parents=True)
    (tmp_path / 'srv/b').mkdir(parents=True)
    raw, _, warnings = translate.read(str(FIXTURES / 'vhosts.conf'), str(tmp_path))
    assert warnings == []
    assert raw['host'] == '0.0.0.0' and raw['port'] == '80'
    first, second = raw['virtual_host']
    assert first == {'server_name': 'a.example', 'document_root': '%s/srv/a' % tmp_path,
                     'access': ['/=Require all granted']}
    assert second['server_alias'] == ['www.b.example']
    assert second['script_alias'] == ['/app=%s/srv/wsgi/myapp.wsgi' % tmp_path]
    assert second['access'] == ['/app/admin=Require all denied']


def test_allow_encoded_slashes_in_the_server_and_virtual_hosts(tmp_path):
    from pywsgi import config
    raw, _, warnings = read_conf(tmp_path, '''\
        allowencodedslashes NoDecode
        <VirtualHost *:80>
            ServerName inherits.example
        </VirtualHost>
        <VirtualHost *:80>
            ServerName own.example
            AllowEncodedSlashes ON
        </VirtualHost>
        ''')
    assert warnings == []
    assert raw['allow_encoded_slashes'] == 'nodecode'
    inherits, own = raw['virtual_host']
    assert 'allow_encoded_slashes' not in inherits      # the server's, as Apache merges it
    assert own['allow_encoded_slashes'] == 'on'
    assert config.build(raw).virtual_host[1]['allow_encoded_slashes'] == 'on'


# ------------------------------------------------------------------ real servers

def seed_tree(root):
    """The files the seed's snippets name, under root: /var/www/wsgi-scripts/myapp.wsgi is the
    seed's hello app (in its Python 3 spelling, examples/myapp.wsgi)."""
    target = root / 'var/www/wsgi-scripts/myapp.wsgi'
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(EXAMPLE_APP, target)
    return root


def serve(start_server, conf, root, *more):
    return start_server('--apache-config', conf, '--apache-root', root, *more)


def test_seed_wsgiscriptalias_snippet_served_unchanged(start_server, tmp_path):
    root = seed_tree(tmp_path / 'root')
    server = serve(start_server, FIXTURES / 'seed_wsgiscriptalias.conf', root)
    for path in ('/myapp', '/myapp/'):
        response, body = server.get(path)
        assert response.status == 200 and body == b'mod_wsgi works!'
        assert response.getheader('Content-Type') == 'text/plain'
    response, _ = server.get('/')
    assert response.status == 404
    assert 'warning' not in server.stderr_text()


def test_seed_daemon_snippet_served_unchanged_by_its_daemon_group(start_server, tmp_path):
    root = seed_tree(tmp_path / 'root')
    server = serve(start_server, FIXTURES / 'seed_daemon.conf', root)
    response, body = server.get('/myapp')
    assert response.status == 200 and body == b'mod_wsgi works!'
    server.wait_for_log(r'daemon process group example\.com \(processes=2 threads=15\)')
    # one server process and the group's two daemon processes
    wait_until(lambda: len(server.children()) == 3, 20, message='3 child processes')
    titles = []
    for pid in server.children():
        try:
            titles.append(Path('/proc/%d/cmdline' % pid).read_bytes())
        except OSError:
            pass
    assert sum(b'(wsgi:example.com)' in title for title in titles) == 2, titles


def site_tree(root):
    shutil.copytree(FIXTURES / 'site', root / 'etc/apache2')
    write(root / 'srv/site/htdocs/index.html', 'home page\n')
    write(root / 'srv/site/htdocs/private/secret.txt', 'secret\n')
    write(root / 'srv/site/media/logo.txt', 'logo\n')
    write(root / 'srv/site/cgi-bin/hello.cgi', '''\
        #!/bin/sh
        printf 'Content-Type: text/plain\\r\\n\\r\\nhello from CGI %s\\n' "$QUERY_STRING"
        ''', mode=stat.S_IRWXU)
    (root / 'srv/site/wsgi-scripts').mkdir(parents=True)
    shutil.copy(EXAMPLE_APP, root / 'srv/site/wsgi-scripts/myapp.wsgi')
    write(root / 'srv/site/scripts/hello.wsgi', '''\
        def application(environ, start_response):
            start_response('200 OK', [('Content-Type', 'text/plain')])
            return [('handler script at %s' % environ['SCRIPT_NAME']).encode()]
        ''')
    write(root / 'srv/site/scripts/hello.cgi', '''\
        #!/bin/sh
        printf 'Content-Type: text/plain\\r\\n\\r\\nCGI by extension %s\\n' "$PATH_INFO"
        ''', mode=stat.S_IRWXU)
    write(root / 'srv/site/scripts/readme.txt', 'read me\n')
    (root / 'srv/site/handlers').mkdir(parents=True)
    shutil.copy(APPS_DIR / 'modpython_handlers.py', root / 'srv/site/handlers')
    return root


@pytest.fixture(scope='module')
def site(start_module_server, tmp_path_factory):
    root = site_tree(tmp_path_factory.mktemp('site'))
    return serve(start_module_server, root / 'etc/apache2/httpd.conf', root)


@pytest.mark.parametrize('path, status, body', [
    ('/', 200, b'home page\n'),
    ('/index.html', 200, b'home page\n'),
    ('/private/secret.txt', 403, None),           # <Directory .../private> Deny from all
    ('/media/logo.txt', 200, b'logo\n'),          # Alias
    ('/cgi-bin/hello.cgi?x=1', 200, b'hello from CGI x=1\n'),   # ScriptAlias
    ('/myapp', 200, b'mod_wsgi works!'),          # WSGIScriptAlias
    ('/myapp/admin', 403, None),                  # <Location /myapp/admin> Require all denied
    ('/scripts/hello.wsgi', 200, b'handler script at /scripts/hello.wsgi'),  # AddHandler
    ('/mpy', 200, b'Hello World!'),               # Include conf.d/*.conf: mod_python
    ('/scripts/hello.cgi/x', 200, b'CGI by extension /x\n'),  # AddHandler cgi-script .cgi
    ('/scripts/readme.txt', 200, b'read me\n'),  # ... the other files stay static
])
def test_site_config_served_unchanged(site, path, status, body):
    response, data = site.get(path)
    assert response.status == status, data
    if body is not None:
        assert data == body


def test_site_config_reports_what_it_does_not_carry_over(site):
    conf = '%s/etc/apache2/httpd.conf' % Path(site.argv[site.argv.index('--apache-root') + 1])
    text = site.stderr_text()
    line = 'pywsgi: warning: %s:69: WSGIRestrictEmbedded is not supported, ignored' % conf
    assert text.count(line) == 1, text
    assert text.count('Options Indexes: directory listings are not served') == 1, text
    assert text.count('warning') == 2, text


def test_command_line_flags_override_the_apache_config(site):
    # Listen 8080 in the file; the test's --host/--port flags win
    response, _ = site.get('/')
    assert response.status == 200 and site.port != 8080


@pytest.fixture(scope='module')
def vhosts(start_module_server, tmp_path_factory):
    root = tmp_path_factory.mktemp('vhosts')
    write(root / 'srv/a/index.html', 'site A\n')
    write(root / 'srv/b/index.html', 'site B\n')
    (root / 'srv/wsgi').mkdir(parents=True)
    shutil.copy(EXAMPLE_APP, root / 'srv/wsgi/myapp.wsgi')
    return serve(start_module_server, FIXTURES / 'vhosts.conf', root)


@pytest.mark.parametrize('host, path, status, body', [
    ('a.example', '/', 200, b'site A\n'),
    ('b.example', '/', 200, b'site B\n'),
    ('www.b.example', '/index.html', 200, b'site B\n'),   # ServerAlias
    ('WWW.B.Example:8000', '/', 200, b'site B\n'),          # case and port do not matter
    ('b.example.', '/', 200, b'site B\n'),                  # nor a trailing dot
    ('unknown.example', '/', 200, b'site A\n'),           # no match: the first virtual host
    ('b.example', '/app', 200, b'mod_wsgi works!'),
    ('a.example', '/app', 404, None),                      # b's application only
    ('b.example', '/app/admin', 403, None),
    ('a.example', '/app/admin', 404, None),
])
def test_virtual_hosts_route_by_host_header(vhosts, host, path, status, body):
    response, data = vhosts.get(path, headers={'Host': host})
    assert response.status == status, data
    if body is not None:
        assert data == body


def test_virtual_host_of_an_absolute_form_target(vhosts):
    response, data = vhosts.get('http://b.example/', headers={'Host': 'a.example'})
    assert response.status == 200 and data == b'site B\n'


# ------------------------------------------------------------------ mod_ssl (issue 20)

def test_mod_ssl_site_translates_to_the_https_settings(tmp_path, pki):
    ssl_site_tree(tmp_path, pki)
    raw, _, warnings = translate.read(str(FIXTURES / 'ssl_vhosts.conf'), str(tmp_path))
    assert warnings == []
    assert (raw['port'], raw['https_port'], raw['https_only']) == ('80', '443', 'true')
    assert raw['ssl_protocols'] == 'TLSv1.2 TLSv1.3'
    assert raw['ssl_ciphers'] == 'HIGH:!aNULL:!MD5'
    assert raw['hsts_policy'] == 'max-age=63072000'
    assert raw['ssl_environ'] == 'true'
    assert raw['ssl_verify_client'] == 'optional'
    assert raw['ssl_ca_certificate_file'] == str(tmp_path / 'etc/ssl/clients-ca.pem')
    a, b = raw['virtual_host']   # the port-80 twin that only redirects is gone
    assert a['server_name'] == 'a.example'
    assert a['ssl_certificate_file'] == str(tmp_path / 'etc/ssl/a.example/fullchain.pem')
    assert b['ssl_certificate_chain_file'] == str(tmp_path / 'etc/ssl/b.example/chain.pem')


@pytest.mark.parametrize('text, message', [
    ('SSLProtocol TLSv1 TLSv1.1\n', 'only TLSv1, TLSv1.1, which pywsgi never offers'),
    ('SSLProtocol all -NOPE\n', "unknown protocol '-NOPE'"),
    ('SSLVerifyClient always\n', 'must be none, optional, require or optional_no_ca'),
    ('<Location /admin>\n    SSLVerifyClient require\n</Location>\n',
     'client certificates for part of a site are not supported'),
    ('<Location /admin>\n    SSLRequireSSL\n</Location>\n', 'SSLRequireSSL outside'),
])
def test_mod_ssl_what_cannot_be_carried_over_is_an_error(tmp_path, text, message):
    with pytest.raises(ApacheConfigError, match=message):
        read_conf(tmp_path, text)


def test_mod_ssl_what_is_left_out_is_reported(tmp_path):
    raw, _, warnings = read_conf(tmp_path, '''\
        Listen 80
        Listen 443 https
        SSLProtocol all -SSLv3
        SSLUseStapling on
        SSLPassPhraseDialog exec:/usr/share/apache2/ask-for-passphrase
        SSLCertificateFile /etc/ssl/site.pem
        SSLCertificateKeyFile /etc/ssl/site.key
        <VirtualHost *:80>
            ServerName plain.example
            SSLCertificateFile /etc/ssl/plain.pem
            Redirect /old /new
        </VirtualHost>
        ''')
    assert (raw['port'], raw['https_port']) == ('80', '443')
    assert raw['ssl_protocols'] == 'TLSv1.2 TLSv1.3'
    assert 'ssl_certificate_file' not in raw['virtual_host'][0]
    text = '\n'.join(warnings)
    for expected in ('SSLProtocol: TLSv1, TLSv1.1 not offered', 'OCSP stapling is not supported',
                     'never runs a program or prompts', 'in a virtual host without SSLEngine on',
                     'Redirect is not supported'):
        assert expected in text, text


def ssl_site_tree(root, pki):
    write(root / 'srv/a/index.html', 'site A over TLS\n')
    write(root / 'srv/b/index.html', 'site B over TLS\n')
    (root / 'srv/wsgi').mkdir(parents=True)
    shutil.copy(EXAMPLE_APP, root / 'srv/wsgi/myapp.wsgi')
    a_cert, a_key = pki.leaf('a.example', name='a')
    b_cert, b_key, b_chain = pki.leaf_via_intermediate('b.example', 'www.b.example', name='b')
    for source, target in ((a_cert, 'a.example/fullchain.pem'), (a_key, 'a.example/privkey.pem'),
                           (b_cert, 'b.example/cert.pem'), (b_key, 'b.example/key.pem'),
                           (b_chain, 'b.example/chain.pem'), (pki.ca_path, 'clients-ca.pem')):
        (root / 'etc/ssl' / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, root / 'etc/ssl' / target)
    return root


def test_mod_ssl_site_served_unchanged(start_server, pki, tmp_path):
    """The certbot-style site runs as it is: SNI picks each host's certificate (b's verifies
    only with its SSLCertificateChainFile), HSTS is sent, port 80 redirects."""
    from tlscerts import https_get, tls_socket
    root = ssl_site_tree(tmp_path / 'root', pki)
    https_port = free_port()
    server = serve(start_server, FIXTURES / 'ssl_vhosts.conf', root, '--https-port', https_port)
    context = pki.client_context()
    for host, page in (('a.example', b'site A over TLS\n'), ('b.example', b'site B over TLS\n'),
                       ('www.b.example', b'site B over TLS\n')):
        status, headers, body = https_get(https_port, context, '/', server_hostname=host)
        assert (status, body) == (200, page), host
        assert headers['strict-transport-security'] == 'max-age=63072000'
    with tls_socket(https_port, context, server_hostname='www.b.example') as sock:
        assert ('DNS', 'www.b.example') in sock.getpeercert()['subjectAltName']
    status, _, body = https_get(https_port, context, '/app', server_hostname='b.example')
    assert body == b'mod_wsgi works!'
    response, _ = server.get('/some/page?x=1', headers={'Host': 'a.example'})
    assert response.status == 301
    assert response.getheader('Location') == 'https://a.example:%d/some/page?x=1' % https_port


# ------------------------------------------------------------------ the command line

def run_pywsgi(args, cwd, timeout=60):
    return subprocess.run([sys.executable, '-m', 'pywsgi', *map(str, args)], cwd=str(cwd),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize('text, message', [
    ('<Directory /srv>\nRequire valid-user\n</Directory>\n', 'httpd.conf:2: Require valid-user'),
    ('<Directory /srv>\n', 'httpd.conf:1: <Directory> is never closed'),
    ('WSGIDaemonProcess a\nWSGIDaemonProcess a\n', 'httpd.conf:2: WSGIDaemonProcess a is '
                                                   'already defined at'),
    ('WSGIScriptAlias /a /nowhere/a.wsgi\n', '--script-alias /a: /nowhere/a.wsgi: no such file'),
    ('AllowEncodedSlashes Yes\n', 'httpd.conf:1: AllowEncodedSlashes Yes: must be On, Off or '
                                  'NoDecode'),
    ('AllowEncodedSlashes\n', 'httpd.conf:1: AllowEncodedSlashes takes 1 argument(s), got 0'),
    ('<VirtualHost *:80>\nServerName a\nAllowEncodedSlashes maybe\n</VirtualHost>\n',
     'httpd.conf:3: AllowEncodedSlashes maybe: must be On, Off or NoDecode'),
    ('<Location />\nAllowEncodedSlashes On\n</Location>\n', 'httpd.conf:2: AllowEncodedSlashes '
                                                          'is not allowed in <Location>'),
])
def test_bad_config_is_one_error_line_and_exit_2(tmp_path, text, message):
    conf = write(tmp_path / 'httpd.conf', text)
    result = run_pywsgi(['--apache-config', conf, '--port', '0'], tmp_path)
    assert result.returncode == 2, result
    assert result.stderr.startswith('pywsgi: error: ') and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_missing_config_file_and_root(tmp_path):
    result = run_pywsgi(['--apache-config', tmp_path / 'nope.conf'], tmp_path)
    assert result.returncode == 2 and 'nope.conf: no such file' in result.stderr
    conf = write(tmp_path / 'httpd.conf', 'ServerName x\n')
    result = run_pywsgi(['--apache-config', conf, '--apache-root', tmp_path / 'no'], tmp_path)
    assert result.returncode == 2 and '--apache-root' in result.stderr


def test_virtual_host_application_in_a_daemon_group(start_server, tmp_path):
    root = tmp_path / 'root'
    write(root / 'srv/files/index.html', 'files\n')
    (root / 'srv/wsgi').mkdir(parents=True)
    shutil.copy(APPS_DIR / 'daemon_app.py', root / 'srv/wsgi/daemon_app.py')
    server = serve(start_server, FIXTURES / 'vhosts_daemon.conf', root)
    response, data = server.get('/env', headers={'Host': 'app.example'})
    assert response.status == 200, data
    info = json.loads(data)
    assert info['mod_wsgi.process_group'] == 'site'
    assert info['mod_wsgi.application_group'].startswith('app.example:')
    assert b'(wsgi:site)' in Path('/proc/%d/cmdline' % info['pid']).read_bytes()
    response, data = server.get('/', headers={'Host': 'files.example'})
    assert response.status == 200 and data == b'files\n'
    response, data = server.get('/', headers={'Host': 'nobody.example'})
    assert response.status == 200 and data == b'files\n'
    response, _ = server.get('/env/admin', headers={'Host': 'app.example'})
    assert response.status == 403


def test_virtual_host_setting_from_the_python_api(start_server, tmp_path):
    # The setting behind <VirtualHost>, as the Python API (and a configuration file) give it.
    write(tmp_path / 'files/index.html', 'files\n')
    script = write(tmp_path / 'serve.py', '''\
        import sys
        import pywsgi
        port = int(sys.argv[sys.argv.index('--port') + 1])
        pywsgi.serve(host='127.0.0.1', port=port, virtual_host=[
            {'server_name': 'files.example', 'document_root': %r},
            {'server_name': 'app.example', 'server_alias': ['app2.example'],
             'script_alias': ['/=%s'], 'access': ['/admin=Require all denied']},
        ])
        ''' % (str(tmp_path / 'files'), EXAMPLE_APP))
    server = start_server(command=[sys.executable, script])
    for host, status, body in [('files.example', 200, b'files\n'),
                               ('app2.example', 200, b'mod_wsgi works!'),
                               ('elsewhere', 200, b'files\n')]:
        response, data = server.get('/', headers={'Host': host})
        assert (response.status, data) == (status, body)
    response, _ = server.get('/admin', headers={'Host': 'app.example'})
    assert response.status == 403


@pytest.fixture(scope='module')
def slashes_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('slashes')
    (root / 'srv/wsgi').mkdir(parents=True)
    shutil.copy(APPS_DIR / 'daemon_app.py', root / 'srv/wsgi/daemon_app.py')
    return root


SLASHES_CONF = '''\
    AllowEncodedSlashes NoDecode
    %s
    <VirtualHost *:80>
        ServerName inherits.example
        WSGIScriptAlias / /srv/wsgi/daemon_app.py
    </VirtualHost>
    <VirtualHost *:80>
        ServerName off.example
        AllowEncodedSlashes off
        WSGIScriptAlias / /srv/wsgi/daemon_app.py
    </VirtualHost>
    <VirtualHost *:80>
        ServerName on.example
        AllowEncodedSlashes On
        WSGIScriptAlias / /srv/wsgi/daemon_app.py
    </VirtualHost>
    '''


@pytest.mark.parametrize('daemon', [False, True], ids=['embedded', 'daemon'])
def test_allow_encoded_slashes_per_virtual_host(start_server, tmp_path, slashes_root, daemon):
    # Each host decodes its requests' paths with its own AllowEncodedSlashes, or the server's;
    # in daemon mode the reactor relays the raw request and the daemon decodes it, per host too.
    group = 'WSGIDaemonProcess site processes=1 threads=2\n    WSGIProcessGroup site'
    conf = write(tmp_path / 'httpd.conf', SLASHES_CONF % (group if daemon else ''))
    server = serve(start_server, conf, slashes_root)
    for host, status, path_info in [('inherits.example', 200, '/env/a%2Fb c'),
                                    ('unknown.example', 200, '/env/a%2Fb c'),  # the first host
                                    ('off.example', 404, None),
                                    ('on.example', 200, '/env/a/b c')]:
        for method in ('GET', 'POST'):
            response, data = server.request(method, '/env/a%2Fb%20c', headers={'Host': host},
                                            body=b'x' if method == 'POST' else None)
            assert response.status == status, (host, method, data)
            if path_info is not None:
                info = json.loads(data)
                assert info['PATH_INFO'] == path_info, (host, method)
                assert info['REQUEST_URI'] == '/env/a%2Fb%20c'
                daemon_title = b'(wsgi:site)' in Path('/proc/%d/cmdline' % info['pid']).read_bytes()
                assert daemon_title == daemon
    # a command-line flag overrides the server's value, not a virtual host's own
    server = serve(start_server, conf, slashes_root, '--allow-encoded-slashes', 'off')
    for host, status in [('inherits.example', 404), ('on.example', 200)]:
        response, _ = server.get('/env/a%2Fb', headers={'Host': host})
        assert response.status == status, host


@pytest.mark.parametrize('value, message', [
    ({'server_name': 'a', 'allow_encoded_slashes': 'sometimes'}, 'must be off, on or nodecode'),
    ({'server_name': 'a', 'server_alias': 'not a name'}, 'not a host name'),
    ({'server_name': 'a', 'threads': 4}, "'threads' cannot be set per virtual host"),
    ('a.example', 'a virtual host is a table of settings'),
])
def test_bad_virtual_host_setting(value, message):
    from pywsgi import config
    with pytest.raises(config.ConfigError) as info:
        config.build(virtual_host=[value])
    assert message in str(info.value) and "'virtual_host'" in str(info.value)


def test_per_mount_process_groups(tmp_path):
    raw, _, _ = read_conf(tmp_path, '''\
        WSGIDaemonProcess one
        WSGIDaemonProcess two
        WSGIScriptAlias /a /srv/a.wsgi process-group=one
        WSGIScriptAlias /b /srv/b.wsgi
        <Location /b>
            WSGIProcessGroup two
        </Location>
        WSGIScriptAlias /c /srv/c.wsgi
        <Location /c>
            WSGIProcessGroup %{GLOBAL}
        </Location>
        ''')
    assert 'process_group' not in raw
    assert raw['mount_process_group'] == ['/a=one', '/b=two']  # /c: embedded, the default


def test_different_daemon_groups_per_mount_each_serve_their_mount(start_server, tmp_path):
    app = ('import os\n'
           'def application(environ, start_response):\n'
           '    start_response("200 OK", [("Content-Type", "text/plain")])\n'
           '    return [("%s %d" % (environ["mod_wsgi.process_group"], os.getpid())).encode()]\n')
    write(tmp_path / 'srv/a.wsgi', app)
    write(tmp_path / 'srv/b.wsgi', app)
    conf = write(tmp_path / 'httpd.conf', '''\
        WSGIDaemonProcess one
        WSGIDaemonProcess two
        WSGIProcessGroup one
        WSGIScriptAlias /a /srv/a.wsgi
        WSGIScriptAlias /b /srv/b.wsgi process-group=two
        ''')
    server = serve(start_server, conf, tmp_path)
    answers = {}
    for url in ('/a', '/b'):
        response, body = server.get(url)
        assert response.status == 200
        group, pid = body.decode().split()
        answers[url] = group
        with open('/proc/%s/cmdline' % pid, 'rb') as f:
            assert f.read().split(b'\0')[0] == b'(wsgi:%s)' % group.encode()
    assert answers == {'/a': 'one', '/b': 'two'}


def test_apache_config_from_the_python_api(start_server, tmp_path):
    root = seed_tree(tmp_path / 'root')
    script = write(tmp_path / 'serve.py', '''\
        import sys
        import pywsgi
        port = int(sys.argv[sys.argv.index('--port') + 1])
        pywsgi.serve(host='127.0.0.1', port=port, apache_config=%r, apache_root=%r)
        ''' % (str(FIXTURES / 'seed_wsgiscriptalias.conf'), str(root)))
    server = start_server(command=[sys.executable, script])
    response, body = server.get('/myapp')
    assert response.status == 200 and body == b'mod_wsgi works!'


SEED = Path('/work/shared/seed/wsgi-apache-modwsgi.md')


@pytest.mark.skipif(not SEED.exists(), reason='the seed document is not on this machine')
def test_fixtures_are_the_seed_snippets_unchanged():
    # Every tab-indented block of the seed that starts with LoadModule is an Apache snippet.
    blocks, current = [], None
    for line in SEED.read_text().splitlines():
        if line.startswith('\t') and (current is not None or 'LoadModule' in line):
            current = (current or []) + [line[1:]]
        elif line.strip() == '' and current is not None:
            current.append('')
        elif current is not None:
            blocks.append('\n'.join(current).strip() + '\n')
            current = None
    assert blocks == [(FIXTURES / 'seed_wsgiscriptalias.conf').read_text(),
                      (FIXTURES / 'seed_daemon.conf').read_text()]


def test_virtual_host_without_server_name_is_the_default_only(tmp_path):
    from pywsgi import config
    (tmp_path / 'srv/d').mkdir(parents=True)
    raw, _, warnings = read_conf(tmp_path, '''\
        <VirtualHost _default_:80>
            DocumentRoot /srv/d
        </VirtualHost>
        <VirtualHost *:80>
            ServerName named.example
        </VirtualHost>
        ''', root=str(tmp_path))
    assert warnings == ['%s:1: <VirtualHost> without ServerName: it is reached only as the '
                        'default (first) virtual host' % (tmp_path / 'httpd.conf')]
    hosts = config.build(raw).virtual_host
    assert hosts == [{'document_root': str(tmp_path / 'srv/d')},
                     {'server_name': 'named.example'}]
