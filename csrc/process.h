/*
 * process.h -- what a child process asks of the kernel and Python's standard library has no
 * call for (pywsgi/process/worker.py, pywsgi/daemon/group.py): to die with the master, and a
 * name for `ps` and `top`.  Plain C, no Python.  In C rather than through ctypes, whose import
 * every server process would carry (about 0.4 MB of its idle memory).  Linux only; elsewhere
 * each returns -1 and the caller falls back (a thread that watches the parent) or does without.
 */
#ifndef PW_PROCESS_H
#define PW_PROCESS_H

/* prctl(PR_SET_PDEATHSIG): the kernel sends `sig` when the parent exits.  0, or -1 (errno). */
int pw_set_parent_death_signal(int sig);

/* The thread's name (prctl(PR_SET_NAME), cut to 15 bytes: top, /proc/PID/comm) and the command
 * line (/proc/PID/cmdline, what ps shows): `title` overwrites the argv area in place, as
 * setproctitle does, cut to the area's size.  0, or -1 when neither could be set. */
int pw_set_process_title(const char *title);

#endif
