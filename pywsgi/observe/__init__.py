"""What an operator sees of a running server: the error log (errorlog) and the live server
status page (status, status.html). The access log is written by the C core (csrc/accesslog.c)."""
