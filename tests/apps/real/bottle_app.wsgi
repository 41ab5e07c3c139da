"""Bottle: a route with a path parameter, a query string and a form POST."""
import bottle

app = bottle.Bottle()


@app.route('/hello/<name>', method=['GET', 'POST'])
def hello(name):
    # getunicode: Bottle's plain get() gives the raw latin-1 view of the UTF-8 bytes
    greeting = (bottle.request.forms.getunicode('greeting')
                or bottle.request.query.getunicode('greeting', 'hello'))
    return {'framework': 'bottle', 'text': '%s %s' % (greeting, name),
            'script_name': bottle.request.environ['SCRIPT_NAME']}


application = app
