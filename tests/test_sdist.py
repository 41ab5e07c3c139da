"""Acceptance (issue 2): sdist -> fresh venv -> pip install -> serve one request.

Slow (the core is compiled in an isolated build) and needs PyPI for the build dependencies
(meson-python, meson, ninja, Cython); CI runs it anyway.

meson-python makes the sdist with `meson dist`, which packs the git HEAD only. So that this test
checks the files as they are (in a fresh clone that is the same thing; in a working copy it is not),
the sdist is built from a snapshot: the tracked and untracked-but-not-ignored files of the working
tree, committed to a throwaway repository."""
import os
import shutil
import subprocess
import sys

import pytest

from serverproc import EXAMPLE_APP, REPO_ROOT


def run(argv, **kwargs):
    result = subprocess.run([str(arg) for arg in argv], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            timeout=1200, **kwargs)
    assert result.returncode == 0, '%s failed (%d):\n%s' % (
        ' '.join(map(str, argv)), result.returncode, result.stdout[-8000:])
    return result


def snapshot_working_tree(destination):
    listing = run(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'],
                  cwd=REPO_ROOT).stdout
    for relative in filter(None, listing.split('\0')):
        source = REPO_ROOT / relative
        if source.is_file():  # a tracked file deleted in the working tree is left out
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    git = ['git', '-c', 'user.name=pywsgi-tests', '-c', 'user.email=tests@localhost',
           '-c', 'commit.gpgsign=false']
    run(git + ['init', '-q'], cwd=destination)
    run(git + ['add', '-A'], cwd=destination)
    run(git + ['commit', '-q', '-m', 'snapshot for the sdist test'], cwd=destination)


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_sdist_installs_in_a_fresh_venv_and_serves(tmp_path, start_server):
    if not (REPO_ROOT / '.git').exists():
        pytest.skip('not a git checkout: meson dist needs one')
    source = tmp_path / 'source'
    snapshot_working_tree(source)

    dist = tmp_path / 'dist'
    run([sys.executable, '-m', 'build', '--sdist', '--outdir', dist, source], cwd=source)
    sdists = list(dist.glob('pywsgi-*.tar.gz'))
    assert len(sdists) == 1, sdists

    venv = tmp_path / 'venv'
    run([sys.executable, '-m', 'venv', venv])
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK='1', PIP_NO_INPUT='1')
    run([venv / 'bin' / 'python', '-m', 'pip', 'install', sdists[0]], env=env, cwd=tmp_path)

    server = start_server(EXAMPLE_APP, command=[venv / 'bin' / 'pywsgi'])
    response, body = server.get('/')
    assert (response.status, body) == (200, b'mod_wsgi works!')

    # meson.build lists the package's files one by one: every one of them is installed, and
    # every module imports from the installed package
    installed = run([venv / 'bin' / 'python', '-c', INSTALLED_FILES], cwd=tmp_path).stdout
    assert sorted(installed.split()) == sorted(source_files(source))


# Run by the installed Python: the package's files (relative to its directory) after importing
# every module but __main__ (which would run the command).
INSTALLED_FILES = '''
import importlib, os, pkgutil, pywsgi
for module in pkgutil.walk_packages(pywsgi.__path__, 'pywsgi.'):
    if module.name != 'pywsgi.__main__':
        importlib.import_module(module.name)
for directory, _, names in os.walk(pywsgi.__path__[0]):
    for name in names:
        if name.endswith(('.py', '.html')):
            print(os.path.relpath(os.path.join(directory, name), pywsgi.__path__[0]))
'''


def source_files(source):
    package = source / 'pywsgi'
    return [str(path.relative_to(package)) for path in package.rglob('*')
            if path.suffix in ('.py', '.html')]
