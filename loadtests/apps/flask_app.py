"""The Flask row of loadtests/bench.py (issue 19): a small Flask 3 application, the way one is
usually written.  `GET /user/<name>` answers a small JSON object (Flask sets Content-Length).
pywsgi loads this file as a script (its `application`); run_peer.py imports it for bjoern and
fastwsgi.  Flask comes from the bench venv (loadtests/install_peers.sh)."""
from flask import Flask

app = Flask(__name__)


@app.get('/user/<name>')
def user(name):
    return {'name': name, 'id': 42, 'active': True, 'roles': ['reader']}


application = app
