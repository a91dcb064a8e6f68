/* reference_worker: the reference client of libchip's C API, and a worker for
 * the integration tests.
 *
 *   reference_worker [--notify] [-r REGISTRY] GROUP...
 *
 * Connects to chipd ($CHIP_SOCKET, as chipd gives every worker), sends
 * READY=1 on $NOTIFY_SOCKET when --notify is given, joins each GROUP (of
 * REGISTRY, else of the only registry) and prints "joined GROUP" for each,
 * then waits for SIGTERM and exits 0. Any failure: a message on stderr and
 * exit 1 (2 for a usage error).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "chip/chip.h"

static volatile sig_atomic_t terminated;

static void on_term(int sig) {
    (void)sig;
    terminated = 1;
}

static int usage(void) {
    fprintf(stderr, "usage: reference_worker [--notify] [-r REGISTRY] GROUP...\n");
    return 2;
}

int main(int argc, char **argv) {
    int notify = 0;
    const char *registry = NULL;
    int i = 1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--notify") == 0) {
            notify = 1;
        } else if (strcmp(argv[i], "-r") == 0) {
            if (++i >= argc) return usage();
            registry = argv[i];
        } else if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else if (argv[i][0] == '-') {
            return usage();
        } else {
            break;
        }
    }

    /* Catch SIGTERM before anything else, so that a stop never finds us
     * half set up with the default action. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigset_t term, old;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, &old);

    chip_client *c = chip_connect(NULL);
    if (!c) {
        int e = errno;
        fprintf(stderr, "reference_worker: cannot connect to chipd: %s\n", chip_strerror(-e));
        return 1;
    }
    for (; i < argc; i++) {
        int rc = chip_join(c, registry, argv[i]);
        if (rc < 0) {
            fprintf(stderr, "reference_worker: cannot join %s: %s\n", argv[i], chip_strerror(rc));
            chip_close(c);
            return 1;
        }
        printf("joined %s\n", argv[i]);
        fflush(stdout);
    }
    /* Ready once the groups are joined: who waits for us finds us in them. */
    if (notify) {
        int rc = chip_notify_ready();
        if (rc < 0) {
            fprintf(stderr, "reference_worker: cannot notify readiness: %s\n", chip_strerror(rc));
            chip_close(c);
            return 1;
        }
    }
    /* sigsuspend atomically unblocks SIGTERM and waits: no lost wake-up. */
    while (!terminated) sigsuspend(&old);
    chip_close(c);
    return 0;
}
