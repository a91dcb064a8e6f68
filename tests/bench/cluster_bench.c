/* The cluster benchmark: two chipds ("hosts" a and b) on one loopback etcd
 * (README.md, "Cluster"), registry "bench", group "cg". Writes one JSON object
 * to OUT.
 *
 * cluster_bench rounds OUT B_SOCKET ROUNDS
 *   Runs as a worker of chipd a (only pids inside a's tree may join). ROUNDS
 *   times: chip_join on a, then busy-polls b's cluster view
 *   (chip_members_cluster, shared memory) until ("a", own pid) is there, from
 *   before the join call to seen; then chip_leave and the same until it is
 *   gone. p50/p99/max of both, in ms. Then it joins itself and a paused child
 *   for good, waits until b sees both, writes OUT and waits for its end.
 *
 * cluster_bench expire OUT B_SOCKET CHIPD_PID NODE
 *   Kills CHIPD_PID (host NODE's chipd, whose members are in b's view) with
 *   SIGKILL and polls b's view every millisecond until no member of NODE is
 *   left: expire_ms, the time from the kill to that.
 */
#define _GNU_SOURCE
#include <chip/chip.h>

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define REGISTRY "bench"
#define GROUP "cg"
enum { kCap = 64 };

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static const char *out_file; /* OUT: where a failure is told too */

/* Tells WHY on stderr and in OUT ({"error": ...}: the driver stops waiting). */
static void fail(const char *why) {
    fprintf(stderr, "cluster_bench: %s\n", why);
    FILE *f = out_file ? fopen(out_file, "w") : NULL;
    if (f) {
        fprintf(f, "{\"error\": \"cluster_bench: ");
        for (const char *p = why; *p; ++p)
            if (*p != '"' && *p != '\\') fputc(*p, f);
        fputs("\"}\n", f);
        fclose(f);
    }
    exit(1);
}

static void die(const char *what, int code) {
    char why[512];
    snprintf(why, sizeof why, "%s: %s", what, chip_strerror(code));
    fail(why);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The Q-quantile (0..1) of the N sorted values V, in ms. */
static double quantile_ms(const uint64_t *v, size_t n, double q) {
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return (double)v[i] / 1e6;
}

/* How many members of NODE b's view of the group has; whether PID is one.
 * A negative code when the view cannot be read. */
static int view(chip_client *b, const char *node, pid_t pid, int *has_pid) {
    chip_cluster_member out[kCap];
    *has_pid = 0;
    ssize_t n = chip_members_cluster(b, REGISTRY, GROUP, out, kCap);
    if (n < 0) return (int)n;
    if (n > kCap) n = kCap;
    int count = 0;
    for (ssize_t i = 0; i < n; ++i) {
        if (strcmp(out[i].node, node) != 0) continue;
        ++count;
        if (out[i].pid == pid) *has_pid = 1;
    }
    return count;
}

/* Busy-polls (yielding the CPU) until PID of node "a" is in b's view (WANT 1)
 * or not (WANT 0); fails after DEADLINE_S. Returns when it was seen. While
 * STARTING, a view b has not made yet is waited for, not an error. */
static uint64_t wait_view(chip_client *b, pid_t pid, int want, double deadline_s, int starting) {
    uint64_t deadline = now_ns() + (uint64_t)(deadline_s * 1e9);
    for (;;) {
        int has;
        int rc = view(b, "a", pid, &has);
        uint64_t t = now_ns();
        if (rc < 0 && !starting) die("chip_members_cluster on b", rc);
        if (rc >= 0 && has == want) return t;
        if (t > deadline) {
            char why[128];
            snprintf(why, sizeof why, "pid %d %s b's view after %.0f s", (int)pid,
                     want ? "not in" : "still in", deadline_s);
            fail(why);
        }
        sched_yield();
    }
}

static int rounds(const char *out_path, const char *b_socket, size_t n) {
    chip_client *a = chip_connect(NULL), *b = chip_connect(b_socket);
    if (!a) die("connect to a", -errno);
    if (!b) die("connect to b", -errno);
    pid_t me = getpid();

    /* Warm-up: both chipds reach etcd and watch in their own time. */
    int rc = chip_join(a, REGISTRY, GROUP);
    if (rc < 0) die("join", rc);
    wait_view(b, me, 1, 60, 1);
    if ((rc = chip_leave(a, REGISTRY, GROUP)) < 0) die("leave", rc);
    wait_view(b, me, 0, 60, 0);

    uint64_t *tj = calloc(n, sizeof *tj), *tl = calloc(n, sizeof *tl);
    if (!tj || !tl) return 1;
    for (size_t i = 0; i < n; ++i) {
        uint64_t t0 = now_ns();
        if ((rc = chip_join(a, REGISTRY, GROUP)) < 0) die("join", rc);
        uint64_t t1 = wait_view(b, me, 1, 10, 0);
        if ((rc = chip_leave(a, REGISTRY, GROUP)) < 0) die("leave", rc);
        uint64_t t2 = wait_view(b, me, 0, 10, 0);
        tj[i] = t1 - t0;
        tl[i] = t2 - t1;
    }
    qsort(tj, n, sizeof *tj, cmp_u64);
    qsort(tl, n, sizeof *tl, cmp_u64);

    /* Members that stay, for the expiry: this process and a paused child. */
    pid_t kid = fork();
    if (kid == 0) {
        for (;;) pause();
    }
    if ((rc = chip_join(a, REGISTRY, GROUP)) < 0) die("join", rc);
    if ((rc = chip_join_pid(a, REGISTRY, GROUP, kid)) < 0) die("join_pid", rc);
    wait_view(b, me, 1, 10, 0);
    wait_view(b, kid, 1, 10, 0);

    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", out_path);
    FILE *f = fopen(tmp, "w");
    if (!f) return 1;
    fprintf(
        f,
        "{\"rounds\": %zu, \"join_ms_p50\": %.3f, \"join_ms_p99\": %.3f, \"join_ms_max\": %.3f,\n"
        " \"leave_ms_p50\": %.3f, \"leave_ms_p99\": %.3f, \"leave_ms_max\": %.3f}\n",
        n, quantile_ms(tj, n, 0.5), quantile_ms(tj, n, 0.99), quantile_ms(tj, n, 1.0),
        quantile_ms(tl, n, 0.5), quantile_ms(tl, n, 0.99), quantile_ms(tl, n, 1.0));
    if (fclose(f) != 0 || rename(tmp, out_path) != 0) return 1;
    for (;;) pause(); /* a member until the driver kills it */
}

static int expire(const char *out_path, const char *b_socket, pid_t chipd, const char *node) {
    chip_client *b = chip_connect(b_socket);
    if (!b) die("connect to b", -errno);
    int has;
    int before = view(b, node, 0, &has);
    if (before < 0) die("chip_members_cluster on b", before);
    if (before == 0) fail("no member of the killed node in b's view");
    uint64_t t0 = now_ns();
    if (kill(chipd, SIGKILL) < 0) {
        perror("cluster_bench: kill");
        return 1;
    }
    uint64_t deadline = t0 + 30000000000u, t1;
    struct timespec ms = {0, 1000000};
    for (;;) {
        t1 = now_ns();
        int rc = view(b, node, 0, &has);
        if (rc < 0) die("chip_members_cluster on b", rc);
        if (rc == 0) break;
        if (t1 > deadline) fail("the killed node's members still in b's view after 30 s");
        nanosleep(&ms, NULL);
    }
    FILE *f = fopen(out_path, "w");
    if (!f) return 1;
    fprintf(f, "{\"expire_ms\": %.1f, \"members\": %d}\n", (double)(t1 - t0) / 1e6, before);
    return fclose(f) != 0;
}

int main(int argc, char **argv) {
    if (argc >= 3) out_file = argv[2];
    if (argc == 5 && strcmp(argv[1], "rounds") == 0) {
        long n = atol(argv[4]);
        return rounds(argv[2], argv[3], n > 0 ? (size_t)n : 1);
    }
    if (argc == 6 && strcmp(argv[1], "expire") == 0)
        return expire(argv[2], argv[3], (pid_t)atol(argv[4]), argv[5]);
    fprintf(stderr,
            "usage: cluster_bench rounds OUT B_SOCKET ROUNDS\n"
            "       cluster_bench expire OUT B_SOCKET CHIPD_PID NODE\n");
    return 2;
}
