# A script without the `application` callable: the CLI must refuse it (one stderr line, exit 2).
def something_else(environ, start_response):
    raise AssertionError('never served')
