"""daemon/plan.py: which group serves each mount, and what the server processes relay."""
import pytest

from pywsgi.config.daemon_groups import DaemonGroup
from pywsgi.daemon.plan import plan_daemon_mode
from pywsgi.errors import StartupError
from pywsgi.site.mounts import MountKind
from pywsgi.site.plan import plan_mounts


@pytest.fixture
def tree(tmp_path):
    for name in ('a.wsgi', 'b.wsgi'):
        (tmp_path / name).write_text('def application(e, s):\n    return []\n')
    (tmp_path / 'htdocs').mkdir()
    return tmp_path


def plan(built, **kwargs):
    return plan_daemon_mode(built, plan_mounts(built, **kwargs))


def test_embedded_mode_is_left_alone(settings, tree):
    built = settings(script_alias=['/a=%s' % (tree / 'a.wsgi')])
    server_settings, mounts, daemon_plan = plan(built)
    assert daemon_plan is None and server_settings is built
    assert [m.kind for m in mounts] == [MountKind.APP]


def test_daemon_runs_the_app_in_a_group_named_like_mod_wsgi_express(settings, tree):
    built = settings(daemon=True, processes=3, threads=7, port=8123, server_processes=2,
                     url_alias=[['/static', str(tree / 'htdocs')]])
    server_settings, mounts, daemon_plan = plan(built, script=str(tree / 'a.wsgi'))
    [group] = daemon_plan.groups
    assert (group.name, group.processes, group.threads) == ('127.0.0.1:8123', 3, 7)
    kinds = {m.prefix: m.kind for m in mounts}
    assert kinds == {'': MountKind.DAEMON, '/static': MountKind.STATIC}  # files stay here
    assert next(m for m in mounts if m.prefix == '').target is group
    # the server processes: --server-processes, and a relay thread per daemon thread (>= 4)
    assert (server_settings.processes, server_settings.threads) == (2, 21)
    assert [m.prefix for m in daemon_plan.mounts_for(group)] == ['']
    assert daemon_plan.script_paths(group) == [str(tree / 'a.wsgi')]


def test_each_mount_goes_to_the_group_of_its_longest_url(settings, tree):
    built = settings(daemon_process=['one:processes=1', 'two:processes=2'],
                     process_group='one',
                     mount_process_group=['/b=two', '/b/embedded=%{GLOBAL}'],
                     script_alias=['/a=%s' % (tree / 'a.wsgi'), '/b=%s' % (tree / 'b.wsgi'),
                                   '/b/embedded=pkg.mod:app'],
                     access=['/a/admin=Deny from all'])
    _, mounts, daemon_plan = plan(built)
    by_prefix = {m.prefix: m for m in mounts}
    assert by_prefix['/a'].target.name == 'one' and by_prefix['/b'].target.name == 'two'
    # the access sub-mount follows its parent, and becomes a relay of its own
    assert by_prefix['/a/admin'].kind is MountKind.DAEMON
    assert by_prefix['/a/admin'].target.name == 'one' and by_prefix['/a/admin'].parent is None
    # %{GLOBAL}: left embedded, in no daemon group
    assert by_prefix['/b/embedded'].kind is MountKind.APP
    assert by_prefix['/b/embedded'].extras['pywsgi.process_group'] == ''
    assert {name: [m.prefix for m in ms] for name, ms in daemon_plan.group_mounts.items()} \
        == {'one': ['/a', '/a/admin'], 'two': ['/b']}


@pytest.mark.parametrize('values, message', [
    ({'process_group': 'nope'}, '--process-group nope: no such daemon process group'),
    ({'mount_process_group': ['/x=nope']}, '--mount-process-group /x=nope: no such daemon'),
    ({'daemon_process': ['g', 'g:threads=2'], 'process_group': 'g'}, 'defined twice'),
    ({'daemon': True, 'url_alias': None}, 'daemon mode needs an application script or module'),
])
def test_planning_errors(settings, tree, values, message):
    values = {key: value for key, value in values.items() if value is not None}
    with pytest.raises(StartupError, match=message):
        plan(settings(**values))


def test_a_group_object_is_options_not_an_application():
    group = DaemonGroup('g')
    assert not callable(group)
    assert group.response_timeout == 300.0
    assert DaemonGroup('g', request_timeout=20.0).response_timeout == 20.0
