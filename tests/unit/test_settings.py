"""The settings: a daemon group's options, the table's conversions, the typed Settings object,
and where values come from."""
import collections.abc
import dataclasses
import os
import typing

import pytest

from pywsgi.config import SETTINGS, ConfigError, Settings, build
from pywsgi.config.daemon_groups import DaemonGroup, group_spec, parse_group
from pywsgi.config.sources import FileSource, collect, read_toml, to_toml


def test_daemon_group_options_in_both_spellings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = parse_group('site:processes=2,threads=4,display-name=%{GROUP},memory-limit=64M,'
                      'python-path=lib:vendor,home=/srv/site,script-reloading=off')
    apache = parse_group('site processes=2 threads=4 display-name=%{GROUP} memory-limit=64M '
                         'python-path=lib:vendor home=/srv/site script-reloading=off')
    assert cli == apache
    assert (cli.processes, cli.threads, cli.memory_limit) == (2, 4, 64 * 1024 * 1024)
    assert cli.python_path == ['/srv/site/lib', '/srv/site/vendor']  # relative to home=
    assert cli.title() == '(wsgi:site)' and not cli.script_reloading
    assert parse_group('bare').threads == 15 and parse_group('bare', default_threads=3).threads == 3


@pytest.mark.parametrize('spec, message', [
    ('g:processes', "option 'processes' needs a value"),
    ('g:color=blue', "unknown option 'color'"),
    ('g:threads=many', "bad value for threads: 'many'"),
    ('g:processes=0', 'processes and threads must be at least 1'),
    ('g:queue-timeout=-1', 'queue-timeout must be a number, 0 or more'),
    ('g:request-timeout=nan', 'request-timeout must be a number, 0 or more'),
    ('a/b:threads=1', "bad daemon process group name 'a/b'"),
    ('', 'a daemon process group needs a name'),
])
def test_daemon_group_option_errors(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_group(spec)


def test_group_spec_reads_back_to_the_same_group(tmp_path):
    group = parse_group('g:processes=3,maximum-requests=100,home=%s,restart-interval=60'
                        % tmp_path)
    assert group_spec(group).startswith('g:processes=3,threads=15,')
    assert parse_group(group_spec(group)) == group
    assert group_spec(DaemonGroup('plain')) == 'plain:processes=1,threads=15'


def test_build_converts_and_derives(tmp_path):
    built = build(port='8080', threads=2, limit_request_body='10M', host='0.0.0.0',
                  document_root=str(tmp_path), daemon_process='g:processes=2')
    assert (built.port, built.threads) == (8080, 2)
    assert built.limit_request_body == 10 * 1024 * 1024
    assert built.server_name == 'localhost'              # derived from a wildcard host
    assert built.server_software.startswith('pywsgi/')
    assert [group.name for group in built.daemon_process] == ['g']
    with pytest.raises(ConfigError, match=r"unknown setting 'thread' \(did you mean 'threads'\?\)"):
        build(thread=2)
    with pytest.raises(ConfigError, match=r"bad value for setting 'port' \(--port\)"):
        build(port='http')


def test_sources_in_precedence_order(tmp_path):
    config = tmp_path / 'pywsgi.toml'
    config.write_text('application = "app.wsgi"\nport = 9000\nthreads = 3\n'
                      'url_alias = {"/static" = "htdocs"}\n')
    source = read_toml(str(config))
    assert source.lines == {'application': 1, 'port': 2, 'threads': 3, 'url_alias': 4}
    collected = collect({'threads': 8}, environ={'PYWSGI_PORT': '9100'}, files=[source])
    assert collected.values['port'] == 9100 and collected.values['threads'] == 8
    assert collected.origins['port'] == 'PYWSGI_PORT'
    assert collected.origins['url_alias'] == '%s:4' % config
    # a file's relative paths resolve against its directory
    assert collected.application == str(tmp_path / 'app.wsgi')
    assert collected.values['url_alias'] == [('/static', str(tmp_path / 'htdocs'))]
    # --print-config reads back to the same values
    printed = tmp_path / 'printed.toml'
    printed.write_text(to_toml(collected))
    again = collect(files=[read_toml(str(printed))])
    assert again.values == collected.values and again.application == collected.application


@pytest.mark.parametrize('source, message', [
    (FileSource('site.toml', {'prot': 1}, lines={'prot': 7}),
     "site.toml:7: unknown setting 'prot' (did you mean 'port'?)"),
    (FileSource('site.toml', {'port': 'x'}, lines={'port': 2}),
     "site.toml:2: bad value for setting 'port'"),
])
def test_a_bad_file_value_names_the_file_and_line(source, message):
    with pytest.raises(ConfigError, match=message.replace('(', r'\(').replace(')', r'\)')
                       .replace('?', r'\?')):
        collect(files=[source])


def test_a_bad_environment_value_names_the_variable():
    with pytest.raises(ConfigError, match='environment variable PYWSGI_THREADS: bad value'):
        collect(environ={'PYWSGI_THREADS': 'lots', 'PATH': os.environ.get('PATH', '')})


# ------------------------------------------------------------------ the Settings object

def test_settings_are_read_as_attributes_and_never_set():
    built = build(threads=3)
    assert built.threads == 3 and built.processes == 1
    with pytest.raises(AttributeError, match=r"no setting 'thread' \(did you mean 'threads'\?\)"):
        built.thread  # noqa: B018
    with pytest.raises(AttributeError, match="no setting 'colour'"):
        built.colour  # noqa: B018
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.threads = 4
    assert not hasattr(built, '__html__')   # probes for hooks get a plain AttributeError


def test_derived_settings_are_copies_with_changes():
    built = build(threads=3, port=8123)
    derived = built.replace(threads=15, process_group='g')
    assert (derived.threads, derived.process_group, derived.port) == (15, 'g', 8123)
    assert (built.threads, built.process_group) == (3, '')   # the original is untouched
    with pytest.raises(AttributeError, match=r"no setting 'thread' \(did you mean 'threads'\?\)"):
        built.replace(thread=15)


def _declared_types():
    return typing.get_type_hints(Settings)


def test_the_typed_declaration_lists_the_table_in_order():
    """config/typed.py declares a field per row of the table (config/settings.py): a new
    setting needs its line there too, with its type."""
    declared = [field.name for field in dataclasses.fields(Settings)]
    table = [setting.name for setting in SETTINGS]
    missing = [name for name in table if name not in declared]
    assert not missing, 'declare these settings in pywsgi/config/typed.py: %s' % missing
    assert declared == table, 'pywsgi/config/typed.py lists the settings in another order'


def _has_type_variable_or_any(hint):
    if hint is typing.Any or isinstance(hint, typing.TypeVar):
        return True
    return any(_has_type_variable_or_any(arg) for arg in typing.get_args(hint))


def test_each_declared_type_is_what_its_converter_returns():
    declared = _declared_types()
    checked = 0
    for setting in SETTINGS:
        returns = typing.get_type_hints(setting.convert).get('return')
        if returns is None or _has_type_variable_or_any(returns):
            continue   # _or_none(...) and the like: the defaults' check below covers them
        assert declared[setting.name] == returns, setting.name
        checked += 1
    assert checked > len(SETTINGS) // 2


def _conforms(value, hint):
    """Whether value is of the type hint (the shapes the declaration uses)."""
    if hint is typing.Any:
        return True
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union:
        return any(_conforms(value, arg) for arg in args)
    if origin in (list, collections.abc.Sequence):
        return isinstance(value, origin) and all(_conforms(item, args[0]) for item in value)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return isinstance(value, tuple) and all(_conforms(item, args[0]) for item in value)
        return (isinstance(value, tuple) and len(value) == len(args)
                and all(_conforms(item, arg) for item, arg in zip(value, args)))
    if origin is dict:
        return isinstance(value, dict) and all(
            _conforms(key, args[0]) and _conforms(item, args[1]) for key, item in value.items())
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def test_every_value_has_its_declared_type(tmp_path):
    declared = _declared_types()
    (tmp_path / 'app.wsgi').write_text('application = None\n')
    samples = [build(), build(
        host='0.0.0.0', max_clients='100', access_log='-', access_log_format='%h',
        application_group='%{GLOBAL}', cache_control='no-cache', server_software='x',
        script_alias=['/a=%s' % (tmp_path / 'app.wsgi')], url_alias=[['/f', str(tmp_path)]],
        cgi_script=[str(tmp_path / 'app.wsgi')], access=['/=Require all granted'],
        python_handler=['/h=mod::handle'], python_option=['k=v'], cgi_extension=['.cgi'],
        daemon_process=['g:threads=2'], mount_process_group=['/a=g'],
        virtual_host=[{'server_name': 'a.example', 'document_root': str(tmp_path)}],
        trust_proxy=['10.0.0.0/8'], trust_proxy_header=['forwarded'], server_status='/st',
        server_status_allow=['10.0.0.0/8'],
        https_port=8443, ssl_certificate_file='c.pem', ssl_certificate_key_file='k.pem',
        ssl_certificate_chain_file='chain.pem', ssl_certificate_key_password_file='pass',
        ssl_ca_certificate_file='ca.pem', ssl_verify_client='optional', https_only=True,
        hsts_policy='max-age=60', ssl_protocols='TLSv1.3', ssl_library='libssl.so.3',
        ssl_environ=True)]
    for built in samples:
        for name, hint in declared.items():
            value = getattr(built, name)
            assert _conforms(value, hint), f'{name} = {value!r} is not {hint}'


# ---------------------------------------------------------------- HTTPS (docs/tls.md)

HTTPS = dict(https_port=8443, ssl_certificate_file='c.pem', ssl_certificate_key_file='k.pem')


def test_https_settings_and_their_defaults():
    settings = build(HTTPS)
    assert settings.ssl_protocols == ['TLSv1.2', 'TLSv1.3']
    assert settings.ssl_ciphers.startswith('ECDHE-ECDSA-AES128-GCM-SHA256:')
    assert settings.ssl_verify_client == 'none' and not settings.https_only
    assert build(HTTPS, ssl_protocols='tlsv1.3').ssl_protocols == ['TLSv1.3']
    assert build(HTTPS, ssl_protocols='all').ssl_protocols == ['TLSv1.2', 'TLSv1.3']
    assert build(HTTPS, hsts_policy='max-age=60').hsts_policy == 'max-age=60'
    # a virtual host's own certificate is enough for --https-port
    host = dict(server_name='a.test', ssl_certificate_file='a.pem', ssl_certificate_key_file='a.k')
    assert build(https_port=8443, virtual_host=[host]).virtual_host[0]['ssl_certificate_file']


@pytest.mark.parametrize('values, message', [
    (dict(https_port=8443), 'needs a certificate'),
    (dict(HTTPS, ssl_certificate_key_file=None), 'needs --ssl-certificate-key-file'),
    (dict(ssl_certificate_file='c.pem'), '--https-port is not'),
    (dict(https_only=True), '--https-port is not'),
    (dict(HTTPS, port=8443), 'HTTPS needs a port of its own'),
    (dict(HTTPS, ssl_verify_client='require'), 'needs --ssl-ca-certificate-file'),
    (dict(HTTPS, ssl_verify_client='sometimes'), 'must be none, optional or require'),
    (dict(HTTPS, ssl_protocols='TLSv1.1 TLSv1.2'), 'TLSv1.1 is not offered: it is insecure'),
    (dict(HTTPS, ssl_protocols='QUIC'), "unknown protocol 'QUIC'"),
    (dict(HTTPS, hsts_policy='includeSubDomains'), 'needs max-age'),
    (dict(HTTPS, hsts_policy='max-age=1\r\nX-Evil: 1'), 'printable ASCII'),
    (dict(HTTPS, https_port=70000), 'TCP port number'),
])
def test_bad_https_settings_are_named(values, message):
    with pytest.raises(ConfigError, match=message):
        build(values)
