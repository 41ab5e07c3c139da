"""Pyramid: a route with a path parameter, a query string and a form POST."""
from pyramid.config import Configurator


def hello(request):
    greeting = request.POST.get('greeting') or request.GET.get('greeting', 'hello')
    return {'framework': 'pyramid', 'text': '%s %s' % (greeting, request.matchdict['name']),
            'script_name': request.script_name}


with Configurator() as config:
    config.add_route('hello', '/hello/{name}')
    config.add_view(hello, route_name='hello', renderer='json')
    application = config.make_wsgi_app()
