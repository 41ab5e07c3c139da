/* process.c -- the parent-death signal and the process title (process.h). */
#include "process.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#ifdef __linux__
#  include <sys/prctl.h>

int pw_set_parent_death_signal(int sig)
{
    return prctl(PR_SET_PDEATHSIG, (unsigned long)sig, 0, 0, 0) == 0 ? 0 : -1;
}

/* arg_start and arg_end, fields 48 and 49 of /proc/self/stat (proc(5)): the argv area.  The
 * second field, the command name, may hold spaces and parentheses, so the count starts after
 * its last ')'. */
static int argv_area(unsigned long *start, unsigned long *end)
{
    char buf[2048];
    FILE *f = fopen("/proc/self/stat", "re");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    int field = 2; /* the ')' ends field 2 */
    for (p++; *p && field < 48; p++)
        if (*p == ' ')
            field++;
    /* p is at field 48 */
    return sscanf(p, "%lu %lu", start, end) == 2 && *end > *start ? 0 : -1;
}

int pw_set_process_title(const char *title)
{
    int named = prctl(PR_SET_NAME, (unsigned long)title, 0, 0, 0) == 0; /* (cut to 15) */
    unsigned long start, end;
    if (argv_area(&start, &end) != 0)
        return named ? 0 : -1;
    /* the area's last byte stays the NUL that ends it */
    size_t room = end - start - 1, len = strlen(title);
    char *area = (char *)start;
    if (len > room)
        len = room;
    memcpy(area, title, len);
    memset(area + len, 0, room + 1 - len);
    return 0;
}

#else

int pw_set_parent_death_signal(int sig)
{
    (void)sig;
    errno = ENOSYS;
    return -1;
}

int pw_set_process_title(const char *title)
{
    (void)title;
    return -1;
}

#endif
