/*
 * scoreboard.h -- live counters of every process, for the server-status page (like Apache's
 * scoreboard).  Plain C, no Python.
 *
 * The master maps one shared anonymous segment before it forks anything, so every server
 * child and every daemon process sees the same memory (with --server-status, and for the
 * readiness probe and the stop sequence: --ready-url, --shutdown-delay).  It holds one fixed-size slot per
 * process slot (server children first, then each daemon group's processes) and one record per
 * daemon process group.  A slot is written only by the process in it (lock-free: relaxed
 * atomic adds on its own cache lines) and by the master (pid, state, restarts); any process
 * can read all of it, which is how the server process answering --server-status sees every
 * process.  Counters only grow, so rates and latency percentiles over any window come from
 * the difference of two snapshots.
 */
#ifndef PW_SCOREBOARD_H
#define PW_SCOREBOARD_H

#include <stdint.h>

#define PW_SB_MAGIC 0x50575342u /* "PWSB" */
#define PW_SB_GROUP_NAME 64

/* Latency histogram: bucket i counts requests that took at most pw_sb_bounds[i] seconds
 * (the last one, +Inf, all the others).  A 1-2.5-5 series, the bounds Prometheus users know. */
#define PW_SB_BUCKETS 20
extern const double pw_sb_bounds[PW_SB_BUCKETS - 1];

enum pw_sb_state {
    PW_SB_EMPTY = 0, /* never started */
    PW_SB_STARTING,  /* forked, loading the application */
    PW_SB_READY,     /* serving */
    PW_SB_STOPPING,  /* finishing its requests before it exits */
    PW_SB_DEAD,      /* exited; the master starts a new one */
};

enum pw_sb_kind { PW_SB_SERVER = 1, PW_SB_DAEMON = 2 };

typedef struct pw_sb_slot {
    /* written by the master */
    int32_t pid;
    int32_t kind;          /* pw_sb_kind */
    int32_t group;         /* daemon group index, -1 for a server process */
    int32_t process_index; /* 0..N-1 within its kind */
    int32_t state;         /* pw_sb_state (the process itself moves it to READY/STOPPING) */
    int32_t threads;       /* worker threads (written by the process) */
    int64_t started_us;    /* wall clock, microseconds since the epoch */
    uint64_t restarts;     /* processes started in this slot after the first */
    /* written by the process in the slot (relaxed atomic adds) */
    uint64_t requests;       /* answered requests */
    uint64_t bytes_out;      /* response body bytes */
    int64_t busy;            /* requests queued for or held by a worker */
    int64_t connections;     /* open client connections */
    uint64_t status[6];      /* [1..5]: 1xx..5xx; [0]: anything else */
    uint64_t latency_us_sum; /* total time from head complete to response done */
    uint64_t latency[PW_SB_BUCKETS];
    uint64_t access_log_dropped; /* access-log lines lost to failed writes (accesslog.h) */
} __attribute__((aligned(64))) pw_sb_slot;

typedef struct pw_sb_group {
    char name[PW_SB_GROUP_NAME]; /* written by the master */
    uint64_t restarts;           /* daemon processes restarted (master) */
    /* written by the server processes around each relay */
    uint64_t relayed;   /* requests relayed to the group */
    int64_t in_flight;  /* relays in progress */
    uint64_t errors[3]; /* the relay's own 502, 503, 504 */
    /* written by the master: the group's processes that accept requests now (ready, not
     * stopping); --ready-url answers 503 while it is 0 (csrc/probes.c) */
    int32_t live;
} __attribute__((aligned(64))) pw_sb_group;

typedef struct pw_scoreboard {
    uint32_t magic;
    int32_t nslots;
    int32_t ngroups;
    int32_t master_pid;
    int64_t created_us;
    /* written by the master the instant a graceful stop of the whole server begins (SIGTERM):
     * --ready-url answers 503 and every response closes its connection from then on, while the
     * server processes still accept for --shutdown-delay (csrc/probes.h) */
    int32_t stopping;
    /* pw_sb_slot slots[nslots]; pw_sb_group groups[ngroups]; (64-byte aligned) */
} __attribute__((aligned(64))) pw_scoreboard;

/* Map a zeroed shared segment (MAP_SHARED|MAP_ANONYMOUS); NULL with errno on failure. */
pw_scoreboard *pw_sb_create(int nslots, int ngroups);
void pw_sb_destroy(pw_scoreboard *sb);
pw_sb_slot *pw_sb_slot_at(pw_scoreboard *sb, int index);   /* NULL when out of range */
pw_sb_group *pw_sb_group_at(pw_scoreboard *sb, int index); /* NULL when out of range */
int64_t pw_sb_wall_us(void);

/* The hot path: a handful of relaxed atomic adds, no lock, no system call. */
#define PW_SB_ADD(field, v) __atomic_add_fetch(&(field), (v), __ATOMIC_RELAXED)

static inline void pw_sb_request_done(pw_sb_slot *slot, int status, long long bytes, double seconds)
{
    int cls = status / 100;
    int i = 0;
    while (i < PW_SB_BUCKETS - 1 && seconds > pw_sb_bounds[i])
        i++;
    PW_SB_ADD(slot->requests, 1);
    if (bytes > 0)
        PW_SB_ADD(slot->bytes_out, (uint64_t)bytes);
    PW_SB_ADD(slot->status[cls >= 1 && cls <= 5 ? cls : 0], 1);
    PW_SB_ADD(slot->latency[i], 1);
    if (seconds > 0)
        PW_SB_ADD(slot->latency_us_sum, (uint64_t)(seconds * 1e6));
}

/* The master's flags (probes.h reads them): a graceful stop of the whole server began; how
 * many of a daemon group's processes accept requests now. */
static inline void pw_sb_announce_stop(pw_scoreboard *sb)
{
    __atomic_store_n(&sb->stopping, 1, __ATOMIC_RELEASE);
}

static inline void pw_sb_set_live(pw_sb_group *g, int live)
{
    __atomic_store_n(&g->live, live, __ATOMIC_RELEASE);
}

/* Around one relay to a daemon group (server side); status_out as pw_relay gives it. */
static inline void pw_sb_relay_start(pw_sb_group *g)
{
    PW_SB_ADD(g->relayed, 1);
    PW_SB_ADD(g->in_flight, 1);
}

static inline void pw_sb_relay_done(pw_sb_group *g, int status_out)
{
    PW_SB_ADD(g->in_flight, -1);
    if (status_out >= 502 && status_out <= 504)
        PW_SB_ADD(g->errors[status_out - 502], 1);
}

#endif
