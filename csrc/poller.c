/*
 * poller.c -- the poller (epoll, kqueue), and what it watches for each connection.  Plain C, no Python; see server.h and reactor.h.
 */
#include "server.h"

int poller_create(void)
{
#ifdef PW_USE_EPOLL
    return epoll_create1(EPOLL_CLOEXEC);
#else
    int fd = kqueue();
    if (fd >= 0)
        fcntl(fd, F_SETFD, FD_CLOEXEC);
    return fd;
#endif
}

/* Level-triggered, for listening sockets, the wake pipe and the reactor relay's daemon
 * connections (which stay registered while idle in its pool: no system call per request). */
int poller_add_level(pw_server *s, int fd, int exclusive)
{
#ifdef PW_USE_EPOLL
    struct epoll_event ev = {0};
    ev.events = EPOLLIN;
#  ifdef EPOLLEXCLUSIVE
    /* Several server processes wait on one listening socket: wake one, not all. */
    if (exclusive)
        ev.events |= EPOLLEXCLUSIVE;
#  endif
    ev.data.fd = fd;
    return epoll_ctl(s->poll_fd, EPOLL_CTL_ADD, fd, &ev);
#else
    (void)exclusive;
    struct kevent kev;
    EV_SET(&kev, fd, EVFILT_READ, EV_ADD, 0, 0, NULL);
    return kevent(s->poll_fd, &kev, 1, NULL, 0, NULL);
#endif
}

void poller_del(pw_server *s, int fd)
{
#ifdef PW_USE_EPOLL
    struct epoll_event ev = {0};
    epoll_ctl(s->poll_fd, EPOLL_CTL_DEL, fd, &ev);
#else
    struct kevent kev;
    EV_SET(&kev, fd, EVFILT_READ, EV_DELETE, 0, 0, NULL);
    kevent(s->poll_fd, &kev, 1, NULL, 0, NULL);
#endif
}

/*
 * A client connection stays registered, level-triggered, for its whole life, so handing it
 * back to the reactor after a response costs no system call.  While a worker (or the reactor's
 * relay) has it, an event for it - a pipelined request, the body a worker reads itself, the
 * client closing - makes the reactor take it out of the poller (conn_disarm, under s->lock),
 * and the hand-back puts it in again.  Only first registration and that re-add cost a call.
 * While the reactor sends output a slow client has not taken (WRITING), it watches for room
 * to write instead of for input (which stays in the socket until the response is out).
 */

int conn_watch(pw_server *s, pw_conn *c, int want)
{
    if (c->watch == want)
        return 0;
    int had = c->watch;
    c->watch = want;
#ifdef PW_USE_EPOLL
    struct epoll_event ev = {0};
    ev.events = want == PW_WATCH_OUT ? EPOLLOUT : (EPOLLIN | EPOLLRDHUP);
    ev.data.fd = c->fd;
    return epoll_ctl(s->poll_fd, had == PW_WATCH_NONE ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c->fd, &ev);
#else
    struct kevent kev[2];
    int n = 0;
    if (had != PW_WATCH_NONE)
        EV_SET(&kev[n++], c->fd, had == PW_WATCH_OUT ? EVFILT_WRITE : EVFILT_READ, EV_DELETE, 0, 0,
               NULL);
    EV_SET(&kev[n++], c->fd, want == PW_WATCH_OUT ? EVFILT_WRITE : EVFILT_READ, EV_ADD, 0, 0, NULL);
    return kevent(s->poll_fd, kev, n, NULL, 0, NULL);
#endif
}

int conn_arm(pw_server *s, pw_conn *c, int first)
{
    if (first)
        c->watch = PW_WATCH_NONE; /* a new descriptor (the number may have been another's) */
    return conn_watch(s, c, PW_WATCH_IN);
}

/* Take c out of the poller while a worker has it (the caller holds s->lock, or owns c). */
void conn_unwatch(pw_server *s, pw_conn *c)
{
    if (c->watch == PW_WATCH_NONE)
        return;
#ifdef PW_USE_EPOLL
    poller_del(s, c->fd);
#else
    struct kevent kev;
    EV_SET(&kev, c->fd, c->watch == PW_WATCH_OUT ? EVFILT_WRITE : EVFILT_READ, EV_DELETE, 0, 0,
           NULL);
    kevent(s->poll_fd, &kev, 1, NULL, 0, NULL);
#endif
    c->watch = PW_WATCH_NONE;
}

/* Reactor thread: an event for connection c at fd, which the reactor does not own now.
 * Returns its state under the lock: READING, LINGERING or WRITING when it was handed back
 * meanwhile and should be handled as usual. */
int conn_disarm(pw_server *s, pw_conn *c, int fd)
{
    pthread_mutex_lock(&s->lock);
    int state = atomic_load_int(&c->state);
    if ((state == PW_CONN_BUSY || state == PW_CONN_RELAYING) && c->fd == fd)
        conn_unwatch(s, c);
    pthread_mutex_unlock(&s->lock);
    return state;
}

void wake_reactor(pw_server *s)
{
    char b = 1;
    ssize_t w = write(s->wake_wr, &b, 1);
    (void)w;
}
