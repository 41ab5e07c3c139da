"""Falcon (WSGI flavour): a resource with a path parameter, a query string and a form POST."""
import falcon


class Hello:
    def _answer(self, req, resp, name, greeting):
        resp.media = {'framework': 'falcon', 'text': '%s %s' % (greeting, name),
                      'script_name': req.env['SCRIPT_NAME']}

    def on_get(self, req, resp, name):
        self._answer(req, resp, name, req.get_param('greeting', default='hello'))

    def on_post(self, req, resp, name):
        form = req.get_media()  # application/x-www-form-urlencoded
        self._answer(req, resp, name, form.get('greeting', 'hello'))


application = falcon.App()
application.add_route('/hello/{name}', Hello())
