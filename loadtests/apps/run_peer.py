"""Runs an app of this directory under a peer server that has no command line of its own:
`python run_peer.py bjoern|fastwsgi HOST PORT [MODULE]`, MODULE hello (the default) or flask_app.
Used by loadtests/bench.py."""
import importlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main():
    server, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    application = importlib.import_module(sys.argv[4] if len(sys.argv) > 4 else 'hello').application
    if server == 'bjoern':
        import bjoern
        bjoern.run(application, host, port)
    elif server == 'fastwsgi':
        import fastwsgi
        fastwsgi.run(wsgi_app=application, host=host, port=port)
    else:
        sys.exit('unknown server %r' % server)


if __name__ == '__main__':
    main()
