/* libchip: the client library of chip, the process supervisor with a
 * process-group registry.
 *
 * Join and leave go to chipd over its control socket (one round trip each);
 * members and groups are read from the registry's shared memory, without a
 * round trip and without chipd's help, so they work even while chipd is busy.
 *
 * Every function that can fail returns a negative errno-style code:
 *   -ENOENT       unknown registry (or, for chip_connect, no socket)
 *   -EINVAL       a bad group or registry name, or NULL registry with several
 *   -ENOSPC       the registry is full
 *   -EPERM        the caller may not act on that pid
 *   -ESRCH        no such pid
 *   -ECONNREFUSED chipd is not reachable
 *   -EPROTO       chipd answered something unexpected
 *   -ESTALE       the shared memory is not a chip registry of this layout version
 *                 (or the registry index beside the socket is malformed)
 *   -EPERM        also: an untrusted runtime folder, registry index or region
 *                 (README.md, "Paths" and "The registry")
 *   -ETIMEDOUT    chipd did not answer within 30 s (stopped or hung); a join or
 *                 leave may still take effect when it resumes
 * Each call that talks to chipd (chip_connect, join, leave) gives up after
 * 30 s: it never blocks for ever on a chipd that does not answer.
 *   -ENOTCONN     (chip_members_cluster) chipd's spec has no "cluster"
 * No function throws, and none keeps global state: a chip_client is one
 * connection (made by the first join or leave); use one per thread.
 */
#ifndef CHIP_CHIP_H
#define CHIP_CHIP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct chip_client chip_client;

typedef struct {
    char name[65];
    uint32_t count;
} chip_group_info;

/* A member of a group on some host of the cluster (README.md, "Cluster"). */
typedef struct {
    char node[65];
    pid_t pid;
} chip_cluster_member;

/* A client of chipd's control socket: SOCKET_PATH, else $CHIP_SOCKET, else the
 * default path. It checks the socket's folder and that the socket exists, but
 * does not connect yet: join and leave connect, members and groups never do.
 * Returns NULL with errno set on failure (ENOENT no socket, EPERM a runtime
 * folder not to be trusted). */
chip_client *chip_connect(const char *socket_path);

/* Joins or leaves GROUP of REGISTRY (NULL: the only registry) for the calling
 * process. Join is idempotent; leaving a group one is not in succeeds. */
int chip_join(chip_client *c, const char *registry, const char *group);
int chip_leave(chip_client *c, const char *registry, const char *group);

/* The same for another pid (a worker of the tree or a descendant of one). */
int chip_join_pid(chip_client *c, const char *registry, const char *group, pid_t pid);
int chip_leave_pid(chip_client *c, const char *registry, const char *group, pid_t pid);

/* Members of GROUP in join order, from shared memory: writes at most CAP pids
 * to OUT and returns the member count (which may exceed CAP). An unknown group
 * has no members (returns 0). */
ssize_t chip_members(chip_client *c, const char *registry, const char *group, pid_t *out,
                     size_t cap);

/* Groups of REGISTRY with their member counts, from shared memory: writes at
 * most CAP entries and returns the group count. */
ssize_t chip_groups(chip_client *c, const char *registry, chip_group_info *out, size_t cap);

/* Members of GROUP on every host of the cluster, from the cluster view chipd
 * keeps in shared memory (as etcd last told it): writes at most CAP entries
 * to OUT, sorted by node then pid, and returns the member count. -ENOTCONN
 * when chipd's spec has no "cluster". */
ssize_t chip_members_cluster(chip_client *c, const char *registry, const char *group,
                             chip_cluster_member *out, size_t cap);

/* Groups of REGISTRY over every host of the cluster, sorted by name, with
 * their member counts: like chip_groups, -ENOTCONN without "cluster". */
ssize_t chip_groups_cluster(chip_client *c, const char *registry, chip_group_info *out, size_t cap);

/* Names of the registries this chipd serves (from its registry index): writes
 * at most CAP names and returns their count. */
ssize_t chip_registries(chip_client *c, char (*names)[65], size_t cap);

/* Sends READY=1 to $NOTIFY_SOCKET (systemd's sd_notify protocol). Returns 0,
 * also when NOTIFY_SOCKET is not set (nothing to tell). */
int chip_notify_ready(void);

/* Sends STATE as is to $NOTIFY_SOCKET: newline-separated assignments, e.g.
 * "CHIP_EXPORT_DB_PORT=5432\nREADY=1" (README.md, "Hand-off between
 * siblings"). Waits while the receiver's queue is full. Returns 0, also when
 * NOTIFY_SOCKET is not set; -EINVAL when STATE is NULL. */
int chip_notify(const char *state);

/* A message for CODE as returned by these functions (negative). */
const char *chip_strerror(int code);

void chip_close(chip_client *c);

#ifdef __cplusplus
}
#endif

#endif /* CHIP_CHIP_H */
