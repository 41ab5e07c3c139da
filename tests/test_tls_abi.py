"""csrc/tls_openssl.h declares by hand the part of OpenSSL's ABI the core uses (OpenSSL is loaded
at run time, so building needs no OpenSSL headers). Wherever the real headers are installed, this
compiles a check that every constant has OpenSSL's value and every function OpenSSL's type."""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

CSRC = Path(__file__).resolve().parent.parent / 'csrc'
CC = shutil.which('cc') or shutil.which('gcc')
HEADERS = [Path(p) for p in ('/usr/include/openssl/ssl.h', '/usr/local/include/openssl/ssl.h',
                             '/opt/homebrew/include/openssl/ssl.h')]
HAVE_HEADERS = any(p.exists() for p in HEADERS)

# Functions whose real prototype differs only in a pointer's declared type (STACK_OF(X509_NAME)
# for a generic stack, OPENSSL_INIT_SETTINGS for void, a const the 3.x headers added): the same
# ABI.
SAME_ABI = {'SSL_CTX_set_client_CA_list', 'X509_NAME_get_text_by_NID', 'OPENSSL_init_ssl'}
# Declared by OpenSSL 1.1.1 only (3.x makes it a macro of SSL_get1_peer_certificate).
OLD_NAMES = {'SSL_get_peer_certificate'}


def test_the_core_includes_no_openssl_header():
    """`pip install .` builds on a machine without OpenSSL's headers."""
    for path in list(CSRC.glob('*.[ch]')) + list(CSRC.parent.glob('pywsgi/*.p*')):
        assert not re.search(r'#\s*include\s*[<"]openssl/', path.read_text()), path


@pytest.mark.skipif(not (CC and HAVE_HEADERS), reason="no C compiler or no OpenSSL headers")
def test_declarations_match_openssl_headers(tmp_path):
    header = (CSRC / 'tls_openssl.h').read_text()
    constants = re.findall(r'^#define PW_([A-Za-z0-9_]+) ', header, re.M)
    lines = ['#include <openssl/ssl.h>', '#include <openssl/x509.h>', '#include <openssl/pem.h>',
             '#include <openssl/err.h>', '#include <openssl/bn.h>', '#include <openssl/crypto.h>',
             '#include "tls_openssl.h"']
    for name in constants:
        if name in ('TLS_OPENSSL_H', 'OSSL_FUNCTIONS'):
            continue
        lines.append('_Static_assert((unsigned long long)(PW_%s) == (unsigned long long)(%s), '
                     '"constant %s");' % (name, name, name))
    skip = SAME_ABI | OLD_NAMES
    lines.append('#define CHECK(ret, name, args) CHECK_##name(ret, name, args)')
    functions = re.findall(r'(?:REQUIRED|OPTIONAL)\([^,]+, (\w+),', header)
    assert len(functions) > 60
    for name in functions:
        if name in skip:
            lines.append('#define CHECK_%s(ret, name, args)' % name)
        else:
            lines.append('#define CHECK_%s(ret, name, args) _Static_assert('
                         '__builtin_types_compatible_p(__typeof__(&name), ret(*) args), '
                         '"function " #name);' % name)
    lines.append('PW_OSSL_FUNCTIONS(CHECK, CHECK)')
    source = tmp_path / 'abi.c'
    source.write_text('\n'.join(lines) + '\n')
    result = subprocess.run([CC, '-std=c11', '-fsyntax-only', '-I', str(CSRC), str(source)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-4000:]
