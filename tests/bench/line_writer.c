/* The reexec benchmark's log writer: a worker that writes numbered lines on
 * its stdout (a pipe chipd reads into a rotated log file) until killed.
 *
 *     line_writer INTERVAL_US
 *
 * Line K (from 0) is "KKKKKKKKKK line of the reexec benchmark\n", 40 bytes.
 * Every INTERVAL_US µs (CLOCK_MONOTONIC, absolute deadlines: a late writer
 * catches up) one line is written, in two write() calls: the number, then the
 * rest. So chipd's reads often end inside a line, and a reexec can come
 * between the two halves: the partial line chipd holds is part of what it hands
 * over. The driver checks afterwards that the numbers in the live file and its
 * rotations are 0, 1, 2, ... with none missing or repeated; a writer killed
 * between its two writes leaves a last line of the number alone, which chipd
 * ends with a newline when the pipe closes. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void write_all(const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(1, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            _exit(2);
        }
        p += w;
        n -= (size_t)w;
    }
}

int main(int argc, char **argv) {
    long interval_us = argc > 1 ? strtol(argv[1], NULL, 10) : 1000;
    if (interval_us <= 0) return 2;
    static const char rest[] = " line of the reexec benchmark\n";
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    for (uint64_t k = 0;; ++k) {
        char num[10];
        uint64_t v = k;
        for (int i = 9; i >= 0; --i) {
            num[i] = (char)('0' + v % 10);
            v /= 10;
        }
        write_all(num, sizeof num);
        write_all(rest, sizeof rest - 1);
        next.tv_nsec += interval_us * 1000L;
        while (next.tv_nsec >= 1000000000L) {
            next.tv_nsec -= 1000000000L;
            next.tv_sec += 1;
        }
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR) {
        }
    }
}
