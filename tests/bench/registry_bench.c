/* The registry benchmark: runs as a worker of chipd (only pids inside the tree
 * may join), measures libchip against that chipd and writes one JSON object to
 * OUT.
 *
 * registry_bench OUT SCALE   (SCALE 1 = full, smaller = quicker)
 *
 *   members_ns_{1,16,256}  chip_members on groups of 1, 16 and 256 members
 *                          (its own children, paused), ns per call
 *   join_us, leave_us      p50/p99 of chip_join and chip_leave round trips
 *   socket_floor_us_p50  a one-byte ping-pong between two processes over a
 *                          Unix socket: the floor of any round trip
 *   ops_1, ops_8           join+leave operations per second from 1 and from 8
 *                          client processes, each on its own connection
 *   death_us               a joined child killed with SIGKILL (and reaped, as
 *                          its parent would): time from kill to its absence
 *                          from chip_members, p50/max
 */
#define _GNU_SOURCE
#include <chip/chip.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, int code) {
    fprintf(stderr, "registry_bench: %s: %s\n", what, chip_strerror(code));
    exit(1);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The Q-quantile (0..1) of the N sorted values V, in µs. */
static double quantile_us(const uint64_t *v, size_t n, double q) {
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return (double)v[i] / 1000.0;
}

static pid_t spawn_sleeper(void) {
    pid_t pid = fork();
    if (pid == 0) {
        for (;;) pause();
    }
    return pid;
}

static double members_ns(chip_client *c, const char *group, size_t expect, long iters) {
    static pid_t out[512];
    ssize_t n = chip_members(c, NULL, group, out, 512);
    if (n != (ssize_t)expect) {
        fprintf(stderr, "registry_bench: %s has %zd members, expected %zu\n", group, n, expect);
        exit(1);
    }
    uint64_t t0 = now_ns();
    for (long i = 0; i < iters; ++i) n += chip_members(c, NULL, group, out, 512);
    uint64_t t1 = now_ns();
    if (n == 0) fputs("", stderr); /* keep the loop */
    return (double)(t1 - t0) / (double)iters;
}

/* Join+leave pairs for SECONDS from one connection: returns operations done. */
static long churn(double seconds, const char *group) {
    chip_client *c = chip_connect(NULL);
    if (!c) die("connect", -errno);
    long ops = 0;
    uint64_t end = now_ns() + (uint64_t)(seconds * 1e9);
    while (now_ns() < end) {
        int rc = chip_join(c, NULL, group);
        if (rc < 0) die("join", rc);
        rc = chip_leave(c, NULL, group);
        if (rc < 0) die("leave", rc);
        ops += 2;
    }
    chip_close(c);
    return ops;
}

/* Operations per second from NPROC client processes churning at once. */
static double ops_per_s(int nproc, double seconds) {
    int fds[2], go[2];
    if (pipe(fds) < 0 || pipe(go) < 0) exit(1);
    for (int i = 0; i < nproc; ++i) {
        if (fork() == 0) {
            char g[32], b;
            snprintf(g, sizeof g, "churn%d", i);
            close(go[1]);
            if (read(go[0], &b, 1) < 0) _exit(1); /* start together: EOF */
            long ops = churn(seconds, g);
            if (write(fds[1], &ops, sizeof ops) < 0) _exit(1);
            _exit(0);
        }
    }
    close(go[0]);
    uint64_t t0 = now_ns();
    close(go[1]);
    long total = 0;
    for (int i = 0; i < nproc; ++i) {
        long ops = 0;
        if (read(fds[0], &ops, sizeof ops) != sizeof ops) exit(1);
        total += ops;
    }
    uint64_t t1 = now_ns();
    while (wait(NULL) > 0) {
    }
    close(fds[0]);
    close(fds[1]);
    return (double)total / ((double)(t1 - t0) / 1e9);
}

/* The floor of any round trip to chipd: one byte there and back over a Unix
 * stream socket to another process that waits in read(). Returns p50 in ns. */
static uint64_t socket_floor_ns(size_t n) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) exit(1);
    pid_t kid = fork();
    if (kid == 0) {
        char b;
        close(sv[0]);
        while (read(sv[1], &b, 1) == 1)
            if (write(sv[1], &b, 1) != 1) break;
        _exit(0);
    }
    close(sv[1]);
    uint64_t *t = calloc(n, sizeof *t);
    char b = 'x';
    for (size_t i = 0; i < n; ++i) {
        uint64_t t0 = now_ns();
        if (write(sv[0], &b, 1) != 1 || read(sv[0], &b, 1) != 1) exit(1);
        t[i] = now_ns() - t0;
    }
    close(sv[0]);
    waitpid(kid, NULL, 0);
    qsort(t, n, sizeof *t, cmp_u64);
    uint64_t p50 = t[n / 2];
    free(t);
    return p50;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: registry_bench OUT SCALE\n");
        return 2;
    }
    double scale = atof(argv[2]);
    chip_client *c = chip_connect(NULL);
    if (!c) die("connect", -errno);

    /* members: 256 paused children; the first 1 / 16 / 256 in g1 / g16 / g256. */
    enum { kKids = 256 };
    pid_t kids[kKids];
    for (int i = 0; i < kKids; ++i) kids[i] = spawn_sleeper();
    for (int i = 0; i < kKids; ++i) {
        int rc = chip_join_pid(c, NULL, "g256", kids[i]);
        if (rc == 0 && i < 16) rc = chip_join_pid(c, NULL, "g16", kids[i]);
        if (rc == 0 && i < 1) rc = chip_join_pid(c, NULL, "g1", kids[i]);
        if (rc < 0) die("join_pid", rc);
    }
    long iters = (long)(2000000 * scale);
    double m1 = members_ns(c, "g1", 1, iters);
    double m16 = members_ns(c, "g16", 16, iters);
    double m256 = members_ns(c, "g256", 256, iters / 8);
    for (int i = 0; i < kKids; ++i) kill(kids[i], SIGKILL);
    for (int i = 0; i < kKids; ++i) waitpid(kids[i], NULL, 0);

    /* join / leave round trips, one connection. */
    size_t n = (size_t)(20000 * scale);
    if (n < 100) n = 100;
    uint64_t *tj = calloc(n, sizeof *tj), *tl = calloc(n, sizeof *tl);
    for (size_t i = 0; i < n; ++i) {
        uint64_t t0 = now_ns();
        int rc = chip_join(c, NULL, "rt");
        uint64_t t1 = now_ns();
        if (rc == 0) rc = chip_leave(c, NULL, "rt");
        uint64_t t2 = now_ns();
        if (rc < 0) die("join/leave", rc);
        tj[i] = t1 - t0;
        tl[i] = t2 - t1;
    }
    qsort(tj, n, sizeof *tj, cmp_u64);
    qsort(tl, n, sizeof *tl, cmp_u64);
    double floor_us = (double)socket_floor_ns(n) / 1000.0;

    double seconds = scale >= 1 ? 1.0 : 0.4;
    double ops1 = ops_per_s(1, seconds);
    double ops8 = ops_per_s(8, seconds);

    /* member death -> removal. */
    size_t trials = scale >= 1 ? 50 : 20;
    uint64_t *td = calloc(trials, sizeof *td);
    for (size_t i = 0; i < trials; ++i) {
        pid_t kid = spawn_sleeper();
        int rc = chip_join_pid(c, NULL, "death", kid);
        if (rc < 0) die("join_pid death", rc);
        pid_t out[4];
        uint64_t t0 = now_ns();
        kill(kid, SIGKILL);
        waitpid(kid, NULL, 0);
        uint64_t deadline = t0 + 2000000000u;
        uint64_t t1;
        for (;;) {
            t1 = now_ns();
            if (chip_members(c, NULL, "death", out, 4) == 0 || t1 > deadline) break;
        }
        td[i] = t1 - t0;
    }
    qsort(td, trials, sizeof *td, cmp_u64);

    FILE *f = fopen(argv[1], "w");
    if (!f) return 1;
    fprintf(f,
            "{\"members_ns_1\": %.1f, \"members_ns_16\": %.1f, \"members_ns_256\": %.1f,\n"
            " \"join_us_p50\": %.2f, \"join_us_p99\": %.2f, \"leave_us_p50\": %.2f, "
            "\"leave_us_p99\": %.2f, \"roundtrips\": %zu,\n"
            " \"socket_floor_us_p50\": %.2f, \"ops_1\": %.0f, \"ops_8\": %.0f,\n"
            " \"death_us_p50\": %.1f, \"death_us_max\": %.1f, \"death_trials\": %zu}\n",
            m1, m16, m256, quantile_us(tj, n, 0.5), quantile_us(tj, n, 0.99),
            quantile_us(tl, n, 0.5), quantile_us(tl, n, 0.99), n, floor_us, ops1, ops8,
            quantile_us(td, trials, 0.5), quantile_us(td, trials, 1.0), trials);
    fclose(f);
    chip_close(c);
    return 0;
}
