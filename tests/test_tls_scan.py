"""An external TLS scanner against pywsgi's HTTPS (issue 20): sslyze (PyPI, in the test extra),
with its own OpenSSL build, probes every protocol version and cipher suite, the known
vulnerabilities (Heartbleed, CCS injection, ROBOT, compression, client renegotiation, downgrade)
and Mozilla's "intermediate" configuration, with pywsgi's defaults. No finding is allowed but
the certificate's own (a test CA no browser trusts, a test certificate valid for centuries).

testssl.sh (Debian) rates the same checks HIGH/CRITICAL; sslyze is used because it installs with
pip like the other test tools and scans in about a second."""
import pytest

from serverproc import SUITE_APP, free_port
from tlscerts import Pki

sslyze = pytest.importorskip('sslyze')
from sslyze.mozilla_tls_profile.tls_config_checker import (  # noqa: E402
    MozillaTlsConfiguration,
    ServerNotCompliantWithTlsConfiguration,
    TlsConfigurationEnum,
    check_server_against_tls_configuration,
)

# What a test certificate cannot pass, and nothing else.
CERTIFICATE_ISSUES = {'certificate_path_validation', 'maximum_certificate_lifespan'}


@pytest.mark.timeout(180)
@pytest.mark.parametrize('key_type', ['ECDSA', 'RSA'])
def test_scanner_finds_nothing_with_the_defaults(start_server, tmp_path, key_type):
    import trustme
    pki = Pki(tmp_path / 'pki', key_type=getattr(trustme.KeyType, key_type))
    port = free_port()
    start_server(SUITE_APP, '--https-port', port, '--threads', '2', *pki.server_args())
    location = sslyze.ServerNetworkLocation('localhost', port, ip_address='127.0.0.1')
    scanner = sslyze.Scanner()
    scanner.queue_scans([sslyze.ServerScanRequest(server_location=location)])
    (result,) = list(scanner.get_results())
    assert result.scan_status == sslyze.ServerScanStatusEnum.COMPLETED, \
        result.connectivity_error_trace
    scan = result.scan_result
    for old in ('ssl_2_0', 'ssl_3_0', 'tls_1_0', 'tls_1_1'):
        assert getattr(scan, old + '_cipher_suites').result.accepted_cipher_suites == [], old
    for current in ('tls_1_2', 'tls_1_3'):
        assert getattr(scan, current + '_cipher_suites').result.accepted_cipher_suites, current
    assert not scan.heartbleed.result.is_vulnerable_to_heartbleed
    assert not scan.openssl_ccs_injection.result.is_vulnerable_to_ccs_injection
    assert scan.robot.result.robot_result.name.startswith('NOT_VULNERABLE')
    assert not scan.tls_compression.result.supports_compression
    assert not scan.session_renegotiation.result.is_vulnerable_to_client_renegotiation_dos
    assert scan.tls_fallback_scsv.result.supports_fallback_scsv
    assert scan.tls_extended_master_secret.result.supports_ems_extension
    intermediate = MozillaTlsConfiguration.get(TlsConfigurationEnum.MOZILLA_INTERMEDIATE)
    try:
        check_server_against_tls_configuration(result, intermediate)
        issues = {}
    except ServerNotCompliantWithTlsConfiguration as error:
        issues = error.issues
    assert set(issues) <= CERTIFICATE_ISSUES, issues
