"""Certificates made at test time (trustme) for the HTTPS tests, and TLS clients for them.

    pki = Pki(directory)                # a CA, a server certificate for localhost/127.0.0.1
    pki.server_args()                   # ['--ssl-certificate-file', ..., '--ssl-certificate-key-file', ...]
    pki.client_context()                # an ssl.SSLContext that trusts the CA
    pki.leaf('other.test')              # (cert path, key path) of another certificate
"""
import datetime
import http.client
import socket
import ssl
from pathlib import Path

import trustme


class Pki:
    def __init__(self, directory, key_type=trustme.KeyType.ECDSA):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca = trustme.CA(key_type=key_type)
        self.ca_path = self.dir / 'ca.pem'
        self.ca.cert_pem.write_to_path(str(self.ca_path))
        self.cert_path, self.key_path = self.leaf('localhost', '127.0.0.1', name='server',
                                                  key_type=key_type)

    def leaf(self, *identities, name=None, key_type=trustme.KeyType.ECDSA, **options):
        """A certificate for the identities, signed by the CA: (cert path, key path); the
        certificate file holds the leaf and its chain."""
        cert = self.ca.issue_cert(*identities, key_type=key_type, **options)
        stem = name or identities[0].replace('*', 'star')
        cert_path = self.dir / (stem + '.crt')
        key_path = self.dir / (stem + '.key')
        with open(cert_path, 'wb') as out:
            for blob in cert.cert_chain_pems:
                out.write(blob.bytes())
        cert.private_key_pem.write_to_path(str(key_path))
        return cert_path, key_path

    def leaf_via_intermediate(self, *identities, name):
        """A certificate signed by an intermediate CA: (cert path (the leaf alone), key path,
        chain path (the intermediate))."""
        intermediate = self.ca.create_child_ca()
        cert = intermediate.issue_cert(*identities)
        cert_path = self.dir / (name + '.crt')
        key_path = self.dir / (name + '.key')
        chain_path = self.dir / (name + '.chain')
        cert.cert_chain_pems[0].write_to_path(str(cert_path))
        cert.private_key_pem.write_to_path(str(key_path))
        intermediate.cert_pem.write_to_path(str(chain_path))
        return cert_path, key_path, chain_path

    def expired_leaf(self, identity='localhost'):
        now = datetime.datetime.now(datetime.timezone.utc)
        return self.leaf(identity, name='expired', not_before=now - datetime.timedelta(days=30),
                         not_after=now - datetime.timedelta(days=1))

    def client_cert(self, name='client.test'):
        """A client certificate (for mutual TLS): (cert path, key path)."""
        return self.leaf(name, name='client-' + name, common_name=name)

    def server_args(self, cert=None, key=None):
        return ['--ssl-certificate-file', str(cert or self.cert_path),
                '--ssl-certificate-key-file', str(key or self.key_path)]

    def client_context(self, minimum=None, maximum=None, alpn=None, cert=None):
        context = ssl.create_default_context(cafile=str(self.ca_path))
        if minimum is not None:
            context.minimum_version = minimum
        if maximum is not None:
            context.maximum_version = maximum
        if alpn is not None:
            context.set_alpn_protocols(alpn)
        if cert is not None:
            context.load_cert_chain(str(cert[0]), str(cert[1]))
        return context


def https_connection(port, context, host='localhost', timeout=10.0):
    return http.client.HTTPSConnection('127.0.0.1', port, timeout=timeout, context=context)


def tls_socket(port, context, server_hostname='localhost', timeout=10.0, session=None):
    raw = socket.create_connection(('127.0.0.1', port), timeout=timeout)
    try:
        return context.wrap_socket(raw, server_hostname=server_hostname, session=session)
    except BaseException:
        raw.close()
        raise


def https_get(port, context, path='/', headers=None, server_hostname='localhost'):
    """One GET over a fresh TLS connection: (status, headers dict (lower-case names), body)."""
    connection = http.client.HTTPSConnection(server_hostname, port, timeout=10, context=context)
    connection.sock = tls_socket(port, context, server_hostname)
    try:
        connection.request('GET', path, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()
