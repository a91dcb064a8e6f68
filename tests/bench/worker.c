/* The benchmark's worker: one tiny static program run under every supervisor.
 *
 * At the start of main it appends "s SLOT PID STAMP\n" to $BENCH_LOG (STAMP:
 * CLOCK_MONOTONIC in ns; fixed-width lines, so the driver counts lines from the
 * file size). With $BENCH_LIFE_MS set it lives BENCH_LIFE_MS + SLOT *
 * $BENCH_STEP_MS ms (staggered slots), appends "e SLOT PID STAMP\n" and
 * _exit(1)s: the restart latency of a slot is its next "s" minus its last "e".
 * Without it the worker pause()s until killed (start N, memory, idle).
 *
 * SLOT is argv[1] when given (supervisord's %(process_num)d, the bare loop),
 * else $CHIP_INSTANCE (chipd), else the last digits of the working directory's
 * name (runsv, s6-supervise and supervise run ./run in the service directory;
 * there ./run is a symlink to this binary).
 *
 * With $BENCH_NOTIFY_FD set (s6, whose service directory has a notification-fd
 * file) it reports readiness on that fd right after the start stamp: without
 * it s6-supervise waits a second before each restart.
 *
 * It does not use stdio or malloc: it is linked statically and must stay small
 * and fast to exec. O_APPEND writes of one short line are atomic, so all
 * workers share the one log file. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Writes V right-aligned in WIDTH digits, space padded, at P. */
static void put_num(char *p, int width, uint64_t v) {
    for (int i = width - 1; i >= 0; --i) {
        p[i] = (char)(v || i == width - 1 ? '0' + v % 10 : ' ');
        v /= 10;
    }
}

/* "k SSSSSS PPPPPPP TTTTTTTTTTTTTTTTTTTT\n": 38 bytes. */
enum { kLineLen = 38 };

static void stamp(int fd, char kind, long slot, uint64_t t) {
    char line[kLineLen];
    line[0] = kind;
    line[1] = ' ';
    put_num(line + 2, 6, (uint64_t)slot);
    line[8] = ' ';
    put_num(line + 9, 7, (uint64_t)getpid());
    line[16] = ' ';
    put_num(line + 17, 20, t);
    line[37] = '\n';
    if (write(fd, line, sizeof line) < 0) _exit(2);
}

static long slot_from_cwd(void) {
    char buf[512];
    if (!getcwd(buf, sizeof buf)) return 0;
    size_t n = strlen(buf);
    while (n > 0 && buf[n - 1] >= '0' && buf[n - 1] <= '9') --n;
    return strtol(buf + n, NULL, 10);
}

int main(int argc, char **argv) {
    uint64_t start = now_ns();
    const char *log = getenv("BENCH_LOG");
    if (!log) return 2;
    long slot;
    const char *inst = getenv("CHIP_INSTANCE");
    if (argc > 1)
        slot = strtol(argv[1], NULL, 10);
    else if (inst)
        slot = strtol(inst, NULL, 10);
    else
        slot = slot_from_cwd();
    int fd = open(log, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0) return 2;
    stamp(fd, 's', slot, start);
    const char *notify = getenv("BENCH_NOTIFY_FD");
    if (notify) { /* s6's readiness notification: a newline, then close */
        int nfd = (int)strtol(notify, NULL, 10);
        if (write(nfd, "\n", 1) == 1) close(nfd);
    }

    const char *life = getenv("BENCH_LIFE_MS");
    if (!life) {
        close(fd);
        for (;;) pause();
    }
    const char *step = getenv("BENCH_STEP_MS");
    long ms = strtol(life, NULL, 10) + slot * (step ? strtol(step, NULL, 10) : 0);
    struct timespec d = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&d, &d) != 0) {
    }
    stamp(fd, 'e', slot, now_ns());
    _exit(1);
}
