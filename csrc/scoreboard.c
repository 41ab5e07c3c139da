/* scoreboard.c -- the shared segment of live counters; see scoreboard.h. */
#include "scoreboard.h"

#include <errno.h>
#include <stddef.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

const double pw_sb_bounds[PW_SB_BUCKETS - 1] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,  0.1,
    0.25,   0.5,     1.0,    2.5,   5.0,    10.0,  25.0, 60.0,  300.0,
};

static size_t sb_size(int nslots, int ngroups)
{
    return sizeof(pw_scoreboard) + (size_t)nslots * sizeof(pw_sb_slot) +
        (size_t)ngroups * sizeof(pw_sb_group);
}

int64_t pw_sb_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

pw_scoreboard *pw_sb_create(int nslots, int ngroups)
{
    if (nslots < 0 || ngroups < 0 || nslots > 100000 || ngroups > 10000) {
        errno = EINVAL;
        return NULL;
    }
    /* Anonymous memory is zero-filled; MAP_SHARED keeps it shared across fork(). */
    void *p = mmap(NULL, sb_size(nslots, ngroups), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    pw_scoreboard *sb = p;
    sb->magic = PW_SB_MAGIC;
    sb->nslots = nslots;
    sb->ngroups = ngroups;
    sb->master_pid = (int32_t)getpid();
    sb->created_us = pw_sb_wall_us();
    for (int i = 0; i < nslots; i++)
        pw_sb_slot_at(sb, i)->group = -1;
    return sb;
}

void pw_sb_destroy(pw_scoreboard *sb)
{
    if (sb)
        munmap(sb, sb_size(sb->nslots, sb->ngroups));
}

pw_sb_slot *pw_sb_slot_at(pw_scoreboard *sb, int index)
{
    if (!sb || index < 0 || index >= sb->nslots)
        return NULL;
    return (pw_sb_slot *)(sb + 1) + index;
}

pw_sb_group *pw_sb_group_at(pw_scoreboard *sb, int index)
{
    if (!sb || index < 0 || index >= sb->ngroups)
        return NULL;
    return (pw_sb_group *)((pw_sb_slot *)(sb + 1) + sb->nslots) + index;
}
