"""The deployment recipes of issue 21 are valid, offline: every Kubernetes manifest of
docker/kubernetes/ against the schemas kubernetes-validate ships (a current Kubernetes, 1.37
with kubernetes-validate 1.37), every YAML file of docker/ through yamllint, HAProxy's
configuration through `haproxy -c`, and the numbers that must agree across files (the
ConfigMap's pywsgi.toml is a valid pywsgi configuration whose probe URLs the Deployment uses,
and the grace periods exceed --shutdown-delay + --graceful-timeout).
"""
import re
import shutil
import subprocess
import sys

import pytest

from serverproc import REPO_ROOT

yaml = pytest.importorskip('yaml')  # PyYAML: yamllint and kubernetes-validate depend on it

DOCKER = REPO_ROOT / 'docker'
MANIFESTS = sorted((DOCKER / 'kubernetes').glob('*.yaml'))


def load(path):
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def manifest(kind):
    found = [doc for path in MANIFESTS for doc in load(path) if doc['kind'] == kind]
    assert len(found) == 1, kind
    return found[0]


def run(*argv):
    return subprocess.run(argv, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)


def test_every_kubernetes_manifest_is_valid():
    assert {doc['kind'] for path in MANIFESTS for doc in load(path)} >= {
        'Deployment', 'Service', 'HorizontalPodAutoscaler', 'PodDisruptionBudget', 'ConfigMap'}
    result = run(sys.executable, '-m', 'kubernetes_validate', '--strict', *map(str, MANIFESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(' passed for resource ') == len(MANIFESTS), result.stdout


def test_the_yaml_of_docker_is_lint_free():
    result = run(sys.executable, '-m', 'yamllint', '--strict', '-c',
                 str(DOCKER / '.yamllint.yaml'), str(DOCKER))
    assert result.returncode == 0, result.stdout + result.stderr


def test_haproxy_accepts_its_configuration():
    if shutil.which('haproxy') is None:
        pytest.skip('haproxy is not installed: `loadtests/install_peers.sh --tools-only`')
    result = run('haproxy', '-c', '-f', str(DOCKER / 'haproxy.cfg'))
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'uri /readyz' in (DOCKER / 'haproxy.cfg').read_text()


def test_the_configmap_is_a_pywsgi_configuration_the_deployment_agrees_with(tmp_path):
    pytest.importorskip('tomllib')  # --config needs Python 3.11
    from pywsgi.config import build, sources
    toml = tmp_path / 'pywsgi.toml'
    toml.write_text(manifest('ConfigMap')['data']['pywsgi.toml'])
    collected = sources.collect({}, environ={}, files=[sources.read_toml(str(toml))])
    settings = build(collected.values)
    assert collected.application
    pod = manifest('Deployment')['spec']['template']['spec']
    container = pod['containers'][0]
    assert container['livenessProbe']['httpGet']['path'] == settings.health_url
    assert container['startupProbe']['httpGet']['path'] == settings.health_url
    assert container['readinessProbe']['httpGet']['path'] == settings.ready_url
    assert 'lifecycle' not in container  # no preStop hook: --shutdown-delay does its work
    assert pod['terminationGracePeriodSeconds'] > (settings.shutdown_delay
                                                   + settings.graceful_timeout)
    assert settings.shutdown_delay > 0
    assert pod['securityContext']['runAsNonRoot'] is True
    assert container['securityContext']['readOnlyRootFilesystem'] is True
    assert container['resources']['limits']['cpu']
    processes = {env['name']: env for env in container['env']}['PYWSGI_PROCESSES']
    assert processes['valueFrom']['resourceFieldRef']['resource'] == 'limits.cpu'
    assert container['ports'][0]['containerPort'] == 8000  # the image's port


def seconds(text):
    match = re.fullmatch(r'(\d+)s', text)
    assert match, text
    return int(match.group(1))


def test_the_compose_files_give_a_stop_its_time():
    compose = yaml.safe_load((DOCKER / 'compose-haproxy.yaml').read_text())
    web = compose['services']['web']
    flags = dict(arg.split('=', 1) for arg in web['command'] if arg.startswith('--'))
    delay = float(flags['--shutdown-delay'])
    graceful = float(flags.get('--graceful-timeout', 15))
    assert seconds(web['stop_grace_period']) > delay + graceful
    assert web['deploy']['replicas'] >= 2
    # HAProxy's check must have taken a stopping replica out before it stops accepting
    cfg = (DOCKER / 'haproxy.cfg').read_text()
    inter = float(re.search(r'inter (\d+)s', cfg).group(1))
    fall = int(re.search(r'fall (\d+)', cfg).group(1))
    assert delay > inter * fall
    plain = yaml.safe_load((DOCKER / 'compose.yaml').read_text())['services']['web']
    assert seconds(plain['stop_grace_period']) > 15


def test_the_image_checks_its_health_url():
    dockerfile = (DOCKER / 'Dockerfile').read_text()
    assert 'PYWSGI_HEALTH_URL=/healthz' in dockerfile
    assert 'PYWSGI_READY_URL=/readyz' in dockerfile
    assert re.search(r"HEALTHCHECK .*\n.*PYWSGI_HEALTH_URL", dockerfile)
