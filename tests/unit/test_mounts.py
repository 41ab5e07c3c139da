"""site/plan.py and site/load.py: what each setting mounts, of which kind, and what the core gets."""
import os

import pytest

from pywsgi.errors import StartupError
from pywsgi.handlers import welcome
from pywsgi.handlers.cgi import CGIDirectory, CGIScript
from pywsgi.handlers.scripts import CGIByExtension, DocumentRootFirst, HandlerScripts
from pywsgi.handlers.static import StaticFiles
from pywsgi.site import routing
from pywsgi.site.load import load_mounts
from pywsgi.site.mounts import MountKind
from pywsgi.site.plan import plan_mounts

APP_SOURCE = 'def application(environ, start_response):\n    return [b"hi"]\n'


@pytest.fixture
def site(tmp_path):
    """A script, a directory of files, a directory of CGI programs."""
    (tmp_path / 'app.wsgi').write_text(APP_SOURCE)
    (tmp_path / 'htdocs' / 'private').mkdir(parents=True)
    (tmp_path / 'htdocs' / 'index.html').write_text('hello')
    (tmp_path / 'cgi-bin').mkdir()
    return tmp_path


def by_prefix(mounts):
    return {mount.prefix: mount for mount in mounts}


def test_nothing_given_is_the_welcome_page(settings):
    mounts = plan_mounts(settings())
    assert [(m.prefix, m.target, m.kind) for m in mounts] == [('', welcome.application,
                                                              MountKind.APP)]


def test_each_setting_mounts_its_kind(settings, site):
    built = settings(script_alias=['/a=%s' % (site / 'app.wsgi'), '/m=pkg.module:app',
                                   '/h=myhandlers::handler'],
                     python_handler=['/mp=handlers::handle'],
                     url_alias=[['/files', str(site / 'htdocs')],
                                ['/one', str(site / 'htdocs' / 'index.html')]],
                     cgi_alias=[['/cgi-bin', str(site / 'cgi-bin')]],
                     cgi_script=['/cgi-app=%s' % (site / 'app.wsgi')])
    mounts = by_prefix(plan_mounts(built, script=str(site / 'app.wsgi')))
    kinds = {prefix: mount.kind for prefix, mount in mounts.items()}
    assert kinds == {'': MountKind.APP, '/a': MountKind.APP, '/m': MountKind.APP,
                     '/h': MountKind.MOD_PYTHON, '/mp': MountKind.MOD_PYTHON,
                     '/files': MountKind.STATIC, '/one': MountKind.STATIC,
                     '/cgi-bin': MountKind.CGI, '/cgi-app': MountKind.CGI}
    assert mounts['/mp'].target == 'handlers::handle'
    assert isinstance(mounts['/files'].target, StaticFiles)
    assert isinstance(mounts['/cgi-bin'].target, CGIDirectory)
    assert isinstance(mounts['/cgi-app'].target, CGIScript)


@pytest.mark.parametrize('extra, app_class', [
    ({'handler_scripts': True}, HandlerScripts),
    ({'cgi_extension': ['.cgi']}, CGIByExtension),
])
def test_a_directory_whose_scripts_run_is_handler_scripts(settings, site, extra, app_class):
    mounts = plan_mounts(settings(document_root=str(site / 'htdocs'), **extra))
    assert [(m.prefix, m.kind) for m in mounts] == [('', MountKind.HANDLER_SCRIPTS)]
    assert isinstance(mounts[0].target, app_class)


def test_the_document_root_goes_in_front_of_an_app_at_the_root(settings, site):
    mounts = plan_mounts(settings(document_root=str(site / 'htdocs')),
                         script=str(site / 'app.wsgi'))
    assert len(mounts) == 1 and mounts[0].kind is MountKind.APP
    assert mounts[0].wrap is not None and 'behind the files of' in mounts[0].label


def test_access_rules_below_a_mount(settings, site):
    built = settings(url_alias=[['/files', str(site / 'htdocs')]],
                     access=['/files/private=Require all denied', '/app/admin=Deny from all'],
                     script_alias=['/app=%s' % (site / 'app.wsgi')])
    mounts = by_prefix(plan_mounts(built))
    # a directory mount: a StaticFiles of its own for the subdirectory
    private = mounts['/files/private']
    assert private.kind is MountKind.STATIC and private.parent is None
    assert private.target.root == os.path.realpath(site / 'htdocs' / 'private')
    # an application: served through its parent's app, at the parent's SCRIPT_NAME
    admin = mounts['/app/admin']
    assert admin.parent is mounts['/app'] and admin.kind is MountKind.APP
    assert admin.group_prefix == '/app'
    assert admin.access is not None and 'pywsgi.access' not in admin.extras


@pytest.mark.parametrize('values, message', [
    ({'script_alias': ['/a=/no/such/app.wsgi']}, '--script-alias /a: /no/such/app.wsgi: no such file'),
    ({'url_alias': [['/f', '/no/such/dir']]}, '--url-alias /f: /no/such/dir: no such file'),
    ({'access': ['/nowhere=Require all denied'], 'script_alias': ['/a=pkg.mod:app']},
     '--access /nowhere: no mount serves this URL'),
])
def test_planning_errors_name_the_option(settings, values, message):
    with pytest.raises(StartupError, match=message):
        plan_mounts(settings(**values))


def test_two_mounts_at_one_prefix_is_an_error(settings, site):
    with pytest.raises(StartupError, match="two applications mounted at '/x'"):
        plan_mounts(settings(script_alias=['/x=a.b:app'], python_handler=['/x=h']))


def test_virtual_hosts_tag_every_mount(settings, site):
    built = settings(virtual_host=[
        {'server_name': 'one.example', 'script_alias': ['/a=%s' % (site / 'app.wsgi')]},
        {'server_name': 'two.example', 'server_alias': ['www.two.example'],
         'document_root': str(site / 'htdocs'), 'allow_encoded_slashes': 'nodecode'}])
    mounts = plan_mounts(built)
    tags = sorted((m.prefix, m.virtual_host, m.extras['pywsgi.allow_encoded_slashes'])
                  for m in mounts)
    assert tags == [('', (1, ('two.example', 'www.two.example')), 'nodecode'),
                    ('/a', (0, ('one.example',)), 'off')]


def test_loaded_mounts_tell_the_core_their_kind(settings, site):
    built = settings(url_alias=[['/files', str(site / 'htdocs')]],
                     access=['/app/admin=Deny from all'],
                     script_alias=['/app=%s' % (site / 'app.wsgi')])
    loaded = {mount.prefix: mount for mount in load_mounts(built, plan_mounts(built))}
    assert loaded['/files'].kind is MountKind.STATIC
    assert isinstance(loaded['/files'].app, StaticFiles)
    assert loaded['/app'].kind is MountKind.APP
    assert loaded['/app'].app({}, None) == [b'hi']
    # the sub-mount calls its parent's app (a Python wrapper): the core calls it
    assert loaded['/app/admin'].kind is MountKind.APP
    assert loaded['/app/admin'].extras['mod_wsgi.application_group'].endswith('|/app')
    # the core compares kinds with plain strings
    assert loaded['/files'].kind == 'static' and loaded['/files'][3] == 'static'
    assert routing.internal_router() is None   # no CGI mount: no router for internal redirects


def test_an_application_that_is_static_files_is_served_from_c(settings, site):
    files = StaticFiles(site / 'htdocs')
    loaded = load_mounts(settings(), plan_mounts(settings(), app=files))
    assert [(m.kind, m.app) for m in loaded] == [(MountKind.STATIC, files)]


def test_cgi_mounts_give_the_process_a_router(settings, site):
    built = settings(cgi_alias=[['/cgi-bin', str(site / 'cgi-bin')]])
    loaded = load_mounts(built, plan_mounts(built, script=str(site / 'app.wsgi')))
    router = routing.internal_router()
    assert router is not None
    assert router.route('/cgi-bin/x') is next(m for m in loaded if m.prefix == '/cgi-bin')


def test_what_runs_in_a_daemon_group(settings, site):
    built = settings(document_root=str(site / 'htdocs'), handler_scripts=True,
                     url_alias=[['/plain', str(site / 'htdocs' / 'index.html')]],
                     cgi_alias=[['/cgi-bin', str(site / 'cgi-bin')]],
                     script_alias=['/a=%s' % (site / 'app.wsgi'), '/h=myhandlers::handler'])
    runs = {m.prefix: m.runs_in_daemon for m in plan_mounts(built)}
    # a directory with handler scripts runs in the group, a single file is static
    assert runs == {'': True, '/a': True, '/h': True, '/plain': False, '/cgi-bin': False}
    app_object = plan_mounts(settings(), app=lambda environ, start_response: [])
    assert not app_object[0].runs_in_daemon   # an object lives in this process only


def test_document_root_first_wraps_the_loaded_app(settings, site):
    built = settings(document_root=str(site / 'htdocs'))
    loaded = load_mounts(built, plan_mounts(built, script=str(site / 'app.wsgi')))
    assert isinstance(loaded[0].app, DocumentRootFirst)
    assert loaded[0].kind is MountKind.APP
