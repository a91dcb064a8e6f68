/* The floor of restart latency: a bare fork/exec/waitpid loop, no supervisor.
 *
 * bare_loop WORKER SLOTS SECONDS: runs SLOTS copies of WORKER (argv[1] = slot)
 * and restarts each one as soon as waitpid(-1) reports it dead, for SECONDS,
 * then kills what is running and exits. The worker stamps its own exit and
 * start, so the latency is measured exactly as for the supervisors. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { kMaxSlots = 256 };

static void on_alarm(int sig) {
    (void)sig;
}

static pid_t spawn(const char *worker, int slot) {
    char arg[16];
    snprintf(arg, sizeof arg, "%d", slot);
    char *const argv[] = {(char *)worker, arg, NULL};
    pid_t pid = fork();
    if (pid == 0) {
        execv(worker, argv);
        _exit(127);
    }
    return pid;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: bare_loop WORKER SLOTS SECONDS\n");
        return 2;
    }
    int slots = atoi(argv[2]);
    if (slots < 1 || slots > kMaxSlots) return 2;
    pid_t pids[kMaxSlots];
    for (int i = 0; i < slots; ++i) pids[i] = spawn(argv[1], i);
    struct sigaction sa = {0};
    sa.sa_handler = on_alarm; /* no SA_RESTART: waitpid returns EINTR */
    sigaction(SIGALRM, &sa, NULL);
    alarm((unsigned)atoi(argv[3]));
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0) break; /* EINTR: the alarm */
        for (int i = 0; i < slots; ++i)
            if (pids[i] == pid) pids[i] = spawn(argv[1], i);
    }
    for (int i = 0; i < slots; ++i) kill(pids[i], SIGKILL);
    while (wait(NULL) > 0) {
    }
    return 0;
}
