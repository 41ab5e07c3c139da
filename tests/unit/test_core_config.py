"""process/core_config.py: what the core's serve() reads, built from the settings for a server
process and for a daemon process of a group; and that the core reads nothing else."""
import dataclasses
import os
import re

import pytest

from pywsgi.daemon.group import group_settings
from pywsgi.daemon.recycle import RecyclePolicy, RecycleWatch
from pywsgi.process.core_config import CoreConfig, core_config
from pywsgi.process.tls import TLSCertificate, TLSMaterial, TLSOptions

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORE_SOURCES = ('pywsgi/_core.pyx', 'pywsgi/_status.pxi', 'pywsgi/_static.pxi',
                'pywsgi/_tls.pxi', 'pywsgi/_probes.pxi')


def read_core():
    return ''.join(open(os.path.join(ROOT, path), encoding='utf-8').read()
                   for path in CORE_SOURCES)


def test_the_core_reads_every_field_and_nothing_else():
    """serve() and its helpers take the CoreConfig as `config` and the RecyclePolicy as
    `policy`: each name they read is declared, and each declared field is read."""
    core = read_core()
    fields = {field.name for field in dataclasses.fields(CoreConfig)}
    read = set(re.findall(r'(?<![\w.])config\.(\w+)', core))
    assert read - fields == set(), 'the core reads names CoreConfig does not declare'
    assert fields - read == set(), 'CoreConfig declares fields the core never reads'
    policy_read = set(re.findall(r'(?<![\w.])policy\.(\w+)', core))
    assert all(hasattr(RecyclePolicy, name) or name in RecyclePolicy.__dataclass_fields__
               for name in policy_read), policy_read
    # no settings dict, no key looked up with a default of the core's own
    assert not re.search(r'settings(\.get\(|\[)', core)


def test_the_core_config_has_no_defaults():
    for field in dataclasses.fields(CoreConfig):
        assert field.default is dataclasses.MISSING, field.name
        assert field.default_factory is dataclasses.MISSING, field.name


def server_config(settings, **values):
    return core_config(settings(**values), process_index=1, scoreboard_slot=3)


def test_a_server_process_takes_its_values_from_the_settings(settings):
    config = server_config(settings, threads=7, processes=2, keep_alive_timeout=3,
                           limit_request_body='1M', access_log='-', server_status='/st',
                           request_timeout=30, interrupt_timeout=4, graceful_timeout=9,
                           maximum_requests=100)
    assert (config.threads, config.processes, config.process_index) == (7, 2, 1)
    assert config.scoreboard_slot == 3 and not config.daemon_role and config.queue_timeout == 0
    assert (config.keep_alive_timeout, config.limit_request_body) == (3.0, 1024 * 1024)
    assert config.access_log == '-' and config.server_status == '/st'
    assert (config.graceful_timeout, config.maximum_requests) == (9.0, 100)
    recycle = config.recycle
    assert (recycle.request_timeout, recycle.interrupt_timeout) == (30.0, 4.0)
    assert (recycle.restart_interval, recycle.inactivity_timeout) == (0.0, 0.0)
    assert recycle.graceful_timeout == 9.0 and recycle.watch is None
    assert recycle.timeout_setting == '--request-timeout'


def test_what_the_core_once_defaulted_is_resolved_here(settings):
    config = server_config(settings, limit_request_head=0, server_name='', trust_proxy=['::1'])
    assert config.limit_request_head == 64 * 1024        # 0: the table's default
    assert config.server_name == '127.0.0.1'             # '' given: the host
    assert config.trust_proxy == ('::1/128',)
    assert config.trust_proxy_header == ('x-forwarded-for', 'x-forwarded-proto')
    assert config.max_clients == 0                       # None: no cap
    assert config.on_recycle is None and config.on_reload is None
    assert config.access_log_format is None              # the combined format, in C


def test_a_daemon_process_takes_its_group(settings, tmp_path):
    built = settings(access_log='-', server_status='/st', threads=5, maximum_requests=7,
                     daemon_process=['g:processes=2,threads=3,queue-timeout=20,'
                                     'request-timeout=10,restart-interval=60,'
                                     'inactivity-timeout=30,graceful-timeout=4,'
                                     'shutdown-timeout=0,maximum-requests=50,memory-limit=1G'])
    group = built.daemon_process[0]
    calls = []
    config = core_config(group_settings(built, group), process_index=1, scoreboard_slot=4,
                         group=group, script_paths=[str(tmp_path / 'app.wsgi')],
                         on_recycle=lambda: calls.append('recycle'),
                         on_reload=lambda: calls.append('reload'))
    assert config.daemon_role and (config.threads, config.processes) == (3, 2)
    assert config.queue_timeout == 20.0 and config.maximum_requests == 50
    # the server processes log and answer these, not the daemons
    assert config.access_log is None and config.server_status is None
    recycle = config.recycle
    assert (recycle.request_timeout, recycle.interrupt_timeout) == (10.0, 0.0)
    assert (recycle.restart_interval, recycle.inactivity_timeout) == (60.0, 30.0)
    assert (recycle.graceful_timeout, recycle.shutdown_timeout) == (4.0, 5.0)  # 0: the default
    assert recycle.timeout_setting == 'request-timeout= of daemon process group g'
    assert isinstance(recycle.watch, RecycleWatch)
    assert recycle.watch.script_paths == [str(tmp_path / 'app.wsgi')]
    config.on_recycle()
    config.on_reload()
    assert calls == ['recycle', 'reload']


def test_the_core_config_is_frozen(settings):
    config = server_config(settings)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.threads = 2


# ---------------------------------------------------------------- HTTPS (docs/tls.md)

HTTPS = dict(https_port=8443, ssl_certificate_file='c.pem', ssl_certificate_key_file='k.pem')
MATERIAL = TLSMaterial(
    default=TLSCertificate(label='--ssl-certificate-file c.pem', cert=b'CERT', key=b'KEY',
                           chain=None, password=None),
    hosts=(), common=TLSOptions(ca=None, verify_client='none', protocols=('TLSv1.3',),
                                ciphers='ECDHE+AESGCM', ticket_keys=bytes(80), ktls=True))


def test_a_server_process_gets_the_tls_material_the_master_hands_it(settings):
    built = settings(HTTPS, https_only=True, hsts_policy='max-age=60', ssl_environ=True,
                     server_name='www.example')
    config = core_config(built, process_index=0, scoreboard_slot=0, tls=MATERIAL,
                         https_listen_fds=[7])
    assert config.tls is MATERIAL and config.https_listen_fds == (7,)
    assert config.ssl_environ and config.hsts_policy == 'max-age=60'
    assert (config.https_redirect_port, config.https_redirect_host) == (8443, 'www.example')
    # no --https-only: plain HTTP is served, not redirected
    assert core_config(settings(HTTPS), process_index=0, scoreboard_slot=0,
                       tls=MATERIAL).https_redirect_port == 0
    # no HTTPS at all
    plain = server_config(settings)
    assert plain.tls is None and plain.https_listen_fds == () and plain.https_redirect_port == 0


def test_a_daemon_process_gets_no_key(settings):
    """TLS ends in the server processes: a daemon's core config has no certificate and no
    HTTPS socket, whatever it is given; it keeps --ssl-environ and --hsts-policy, which it
    applies to the requests relayed to it as https."""
    built = settings(HTTPS, hsts_policy='max-age=60', ssl_environ=True,
                     daemon_process=['g:processes=1'])
    group = built.daemon_process[0]
    config = core_config(group_settings(built, group), process_index=0, scoreboard_slot=1,
                         group=group, tls=MATERIAL, https_listen_fds=[7])
    assert config.tls is None and config.https_listen_fds == ()
    assert config.ssl_environ and config.hsts_policy == 'max-age=60'
