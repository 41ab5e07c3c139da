/*
 * queue.c -- handing connections to worker threads: the FIFO queue, lazy wake-ups, leader mode
 * (the workers take turns running the reactor).  Plain C, no Python; see server.h and reactor.h.
 */
#include "server.h"

/* A worker thread counts in s->running from the connection it pops until its next pop. */
static __thread int worker_running;

/* Under qlock: takes the queue's first connection (there is one) for this worker thread, which
 * counts in s->running from now until its next pop. */
static pw_conn *take_first(pw_server *s)
{
    pw_conn *c = s->qhead;
    s->qhead = c->next;
    if (!s->qhead)
        s->qtail = NULL;
    c->next = NULL;
    __atomic_store_n(&s->queued, s->queued - 1, __ATOMIC_RELAXED); /* (read unlocked: out_hold) */
    if (s->cfg.leader_follower)
        out_worker_next(s, c);
    if (!worker_running) {
        worker_running = 1;
        s->running++;
    }
    return c;
}

/* The --server-status URL or below: answered by the Python layer, never relayed. */
static int is_status_target(pw_server *s, pw_conn *c)
{
    size_t n = s->cfg.status_url_len;
    const pw_span *p = &c->req.path;
    if (n == 0 || p->len < n || memcmp(c->buf + p->off, s->cfg.status_url, n) != 0)
        return 0;
    return p->len == n || c->buf[p->off + n] == '/';
}

void queue_push(pw_server *s, pw_conn *c)
{
    if (s->cfg.relay_async && c->req.body_kind == PW_BODY_NONE && !is_status_target(s, c) &&
        relay_async_start(s, c) == 0)
        return;
    queue_to_worker(s, c);
}

void queue_to_worker(pw_server *s, pw_conn *c)
{
    clear_pending(s, c);
    atomic_add_int(&s->busy, 1);
    SB_ADD(s, busy, 1);
    atomic_store_int(&c->state, PW_CONN_BUSY);
    if (s->cfg.dispatch) {
        if (s->hold_turn) {
            out_dispatch_holding(s, c);
            return;
        }
        s->cfg.dispatch(s, c); /* inline mode: served (and released) right here */
        return;
    }
    c->next = NULL;
    c->turn = s->turns;
    pthread_mutex_lock(&s->qlock);
    if (s->qtail)
        s->qtail->next = c;
    else {
        s->qhead = c;
        s->queue_moved = pw_now();
    }
    s->qtail = c;
    __atomic_store_n(&s->queued, s->queued + 1, __ATOMIC_RELAXED);
    /* Lazy wake-up (cfg.lazy_wake): only one thread runs Python at a time, so waking a sleeping
     * worker while another is serving mostly buys two context switches and a GIL hand-over.
     * The running worker takes this request when it comes back to the queue; if the queue does
     * not move for lazy_wake seconds (the running workers wait on something), the reactor
     * wakes sleeping workers then (queue_lazy_check). */
    if (s->cfg.lazy_wake > 0 && (s->running + s->signaled > 0 || s->cfg.leader_follower)) {
        if (!__atomic_load_n(&s->lazy_due_us, __ATOMIC_RELAXED))
            __atomic_store_n(&s->lazy_due_us,
                             (long long)((s->queue_moved + s->cfg.lazy_wake) * 1e6) + 1,
                             __ATOMIC_RELAXED);
    } else if (s->waiting > s->signaled) {
        s->signaled++;
        pthread_cond_signal(&s->qcond);
    }
    pthread_mutex_unlock(&s->qlock);
}

/* Reactor thread, once s->lazy_due_us has passed: wake a sleeping worker for every queued
 * request if the queue has not moved for lazy_wake seconds, else look again when it would. */
void queue_lazy_check(pw_server *s, double now)
{
    pthread_mutex_lock(&s->qlock);
    long long due = 0;
    if (s->qhead) {
        if (now - s->queue_moved >= s->cfg.lazy_wake) {
            int want = s->queued - s->signaled;
            for (; want > 0 && s->waiting > s->signaled; want--) {
                s->signaled++;
                pthread_cond_signal(&s->qcond);
            }
            s->queue_moved = now;
        }
        due = (long long)((s->queue_moved + s->cfg.lazy_wake) * 1e6) + 1;
    }
    __atomic_store_n(&s->lazy_due_us, due, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&s->qlock);
}

/* Leader mode: a worker that has the token hands the reactor over when it goes to serve; one
 * sleeping worker (the watcher) must then look again within lazy_wake. */
static void recruit_watcher(pw_server *s)
{
    if (!s->watcher && s->waiting > 0) {
        s->recruit = 1;
        pthread_cond_signal(&s->qcond);
    }
}

/*
 * Leader mode (workers that run Python): no reactor thread.  A worker with nothing to serve runs the
 * reactor itself (reactor_turn, holding the token), and then serves what it queued - so a
 * request that arrives at an idle process wakes one thread, not a reactor and then a worker.
 * The other workers sleep.  While the token holder serves, nobody polls; that is fine for as
 * long as it takes, up to lazy_wake: then the watcher (one sleeper with a timed wait) takes the
 * reactor, or the queued requests, itself.  A thread coming back from a request takes queued
 * work first, then the reactor; a woken one ("patient") only what was left for lazy_wake.
 */
pw_conn *leader_pop(pw_server *s)
{
    int patient = 0, am_watcher = 0;
    pw_conn *c = NULL;
    out_worker_flush(s, 0);
    pthread_mutex_lock(&s->qlock);
    if (worker_running) {
        worker_running = 0;
        s->running--;
    }
    while (!atomic_load_int(&s->shutdown)) {
        double now = patient ? pw_now() : 0;
        if (s->qhead &&
            (!patient || now - s->queue_moved >= s->cfg.lazy_wake ||
             (s->running == 0 && !s->token))) {
            c = take_first(s);
            s->queue_moved = pw_now();
            break;
        }
        if (out_worker_holding(s)) {
            /* about to poll or sleep: what this worker held goes out first (output.c); that
             * may queue a pipelined request, so look again */
            pthread_mutex_unlock(&s->qlock);
            out_worker_flush(s, 1);
            pthread_mutex_lock(&s->qlock);
            continue;
        }
        if (!s->token && !s->poller_failed &&
            (!patient || s->running == 0 || now - s->token_freed >= s->cfg.lazy_wake)) {
            if (am_watcher) {
                am_watcher = 0;
                s->watcher = 0;
            }
            __atomic_store_n(&s->token, 1, __ATOMIC_SEQ_CST); /* read unlocked by busy_done */
            pthread_mutex_unlock(&s->qlock);
            int rc = reactor_turn(s);
            pthread_mutex_lock(&s->qlock);
            __atomic_store_n(&s->token, 0, __ATOMIC_SEQ_CST);
            s->token_freed = pw_now();
            if (rc != 0)
                s->poller_failed = 1;
            /* What the turn queued is left to the worker serving (it holds the GIL and takes
             * queued work first; output.c holds its responses for the turn) unless the queue
             * stalls for lazy_wake: two workers taking turns with the GIL cost more than one
             * serving all (docs/ARCHITECTURE.md, leader mode).  Not in a daemon process,
             * whose requests come from a relay that waits for each answer. */
            patient = s->running > 0 && !s->cfg.daemon_role;
            continue;
        }
        if (s->recruit && !s->watcher) {
            s->recruit = 0;
            am_watcher = 1;
            s->watcher = 1;
        } else if (!am_watcher && !s->watcher && (s->running > 0 || s->qhead)) {
            s->recruit = 0;
            am_watcher = 1;
            s->watcher = 1;
        } else if (am_watcher && s->running == 0 && !s->qhead) {
            am_watcher = 0; /* nobody serves: nothing can stall, sleep for good */
            s->watcher = 0;
        }
        s->waiting++;
        if (am_watcher) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            long long ns = until.tv_nsec + (long long)(s->cfg.lazy_wake * 1e9);
            until.tv_sec += ns / 1000000000;
            until.tv_nsec = ns % 1000000000;
            pthread_cond_timedwait(&s->qcond, &s->qlock, &until);
        } else {
            pthread_cond_wait(&s->qcond, &s->qlock);
        }
        s->waiting--;
        if (s->signaled > 0)
            s->signaled--;
        patient = 1;
    }
    if (am_watcher)
        s->watcher = 0;
    if (c && !s->token)
        recruit_watcher(s);
    pthread_mutex_unlock(&s->qlock);
    out_worker_flush(s, !c); /* the turn's batch ends with c (or stopping: nothing stays held) */
    return c;
}

pw_conn *pw_queue_try_pop(pw_server *s)
{
    pw_conn *c = NULL;
    if (s->cfg.leader_follower)
        out_worker_flush(s, 0); /* what was held PW_HOLD_AGE ago goes out (output.c) */
    pthread_mutex_lock(&s->qlock);
    if (s->qhead && !atomic_load_int(&s->shutdown)) {
        c = take_first(s);
        /* the caller holds the GIL: the request starts now (one clock read for both) */
        double now = pw_now();
        c->served_at = now;
        if (s->cfg.lazy_wake > 0)
            s->queue_moved = now;
        if (s->cfg.leader_follower && !s->token)
            recruit_watcher(s);
    }
    pthread_mutex_unlock(&s->qlock);
    if (c && s->cfg.leader_follower)
        out_worker_flush(s, 0); /* the turn's batch ends with c */
    return c;
}

/* A worker begins serving c, having taken it from the queue without the GIL and got the GIL
 * since (pw_queue_try_pop, called with the GIL, sets this itself). */
void pw_queue_serving(pw_conn *c)
{
    c->served_at = pw_now();
}

pw_conn *pw_queue_pop(pw_server *s)
{
    if (s->cfg.leader_follower)
        return leader_pop(s);
    pthread_mutex_lock(&s->qlock);
    if (worker_running) {
        worker_running = 0;
        s->running--;
    }
    while (!s->qhead && !atomic_load_int(&s->shutdown)) {
        s->waiting++;
        pthread_cond_wait(&s->qcond, &s->qlock);
        s->waiting--;
        if (s->signaled > 0)
            s->signaled--;
    }
    pw_conn *c = NULL;
    if (s->qhead) {
        c = take_first(s);
        if (s->cfg.lazy_wake > 0)
            s->queue_moved = pw_now();
    }
    pthread_mutex_unlock(&s->qlock);
    return c;
}

void busy_done(pw_server *s)
{
    SB_ADD(s, busy, -1);
    if ((atomic_add_int(&s->busy, -1) < s->cfg.accept_busy_limit &&
         atomic_load_int(&s->accept_paused)) ||
        atomic_load_int(&s->fds_paused)) {
        /* Accepting may resume.  In leader mode nobody needs waking while nobody polls: the
         * next poller re-balances before it waits (reactor_turn).  This load pairs with the
         * fence there, so one of the two sees the other's write. */
        if (s->cfg.leader_follower && !__atomic_load_n(&s->token, __ATOMIC_SEQ_CST))
            return;
        wake_reactor(s);
    }
}
