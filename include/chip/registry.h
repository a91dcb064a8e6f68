/* The shared-memory layout of a chip registry (layout version 1).
 *
 * Each registry named in a spec is one POSIX shared-memory object, named
 * "/chip-<hash>-<registry>" (<hash>: 16 hex digits of FNV-1a 64 over chipd's
 * absolute control-socket path), mode 0644. chipd alone writes it; any local
 * process may map it read-only (PROT_READ, MAP_SHARED) and list groups and
 * members without talking to chipd. libchip (chip_members, chip_groups) is
 * one such reader; this header lets a program in any language be another.
 *
 * What this header does not do: it has no functions besides the name hash.
 * Joining and leaving go through chipd's control socket (README.md, "Protocol").
 *
 * Region layout (all offsets from the start of the region, little or big
 * endian as the host; every integer naturally aligned):
 *
 *   chip_registry_header                       at 0
 *   uint32_t index[index_size]                 at header.index_offset
 *   chip_registry_group groups[max_groups]     at header.groups_offset
 *   chip_registry_member members[max_members]  at header.members_offset
 *
 * Slot indices are uint32_t; CHIP_REGISTRY_NONE (0xffffffff) means "none".
 *
 * Groups. A used group slot has name_len in 1..64 and a member list; a free
 * slot has name_len 0. Live groups form a doubly linked list in creation order
 * (header.group_head, group.next_group). A group that loses its last member is
 * removed at once: it disappears from the list and its slot is free for reuse.
 *
 * The hash index. index[] is an open-addressing table with linear probing and
 * no tombstones (deletion shifts later entries back), of index_size buckets
 * (a power of two, at least twice max_groups, so it is never more than half
 * full). A bucket holds a group slot index or CHIP_REGISTRY_NONE (empty). To
 * find group NAME: h = chip_registry_hash(NAME); probe buckets
 * (h + i) & (index_size - 1) for i = 0, 1, ... until an empty bucket; a bucket
 * whose group has the same hash, length and bytes is the group.
 *
 * Members. Each membership (pid P in group G) is one member slot; the slots of
 * a group form a doubly linked list in join order (group.first_member,
 * member.next). A free member slot has pid 0.
 *
 * Reader protocol (a seqlock). header.seq is even while the region is stable
 * and odd while chipd is writing; chipd increments it before and after every
 * change (or batch of changes) and increments header.generation once per
 * change. A reader:
 *   1. loads seq with acquire ordering; if odd, retries (chipd is mid-write);
 *   2. reads what it needs (relaxed loads), copying it out;
 *   3. issues an acquire fence and loads seq again; if it changed, discards
 *      the copy and retries from 1.
 * The data read in 2 may be torn: a reader must treat every index as
 * untrusted (check it against the capacities) and bound every walk (at most
 * max_members steps along a member list, max_groups along the group list,
 * index_size probes) before trusting the copy in 3. A reader should also bound
 * its retries: a chipd killed mid-write leaves seq odd forever.
 *
 * Lifetime. chipd sets header.dead to 1 at a clean shutdown (before unlinking
 * the name), and a new chipd that finds a stale region under its name sets
 * dead before replacing it. A reader that keeps the region mapped checks dead
 * and, when set, unmaps and opens the name again. The header's static fields
 * (magic through name) never change after chipd has formatted the region;
 * chipd writes magic last, so a reader that sees the magic sees them all.
 */
#ifndef CHIP_REGISTRY_H
#define CHIP_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* "CHIPREG1" read as a little-endian uint64_t. */
#define CHIP_REGISTRY_MAGIC 0x3147455250494843ULL
#define CHIP_REGISTRY_VERSION 1u
#define CHIP_REGISTRY_NONE 0xffffffffu
#define CHIP_REGISTRY_NAME_MAX 64

typedef struct chip_registry_header {
    uint64_t magic;                        /* CHIP_REGISTRY_MAGIC */
    uint32_t version;                      /* CHIP_REGISTRY_VERSION; a reader refuses others */
    uint32_t header_size;                  /* sizeof(chip_registry_header) */
    uint64_t total_size;                   /* bytes of the whole region */
    uint32_t max_groups;                   /* group slots */
    uint32_t max_members;                  /* member slots (memberships, over all groups) */
    uint32_t index_size;                   /* hash buckets: a power of two >= 2 * max_groups */
    uint32_t group_size;                   /* sizeof(chip_registry_group) */
    uint32_t member_size;                  /* sizeof(chip_registry_member) */
    int32_t writer_pid;                    /* chipd's pid */
    uint64_t index_offset;                 /* where index[] starts */
    uint64_t groups_offset;                /* where groups[] starts */
    uint64_t members_offset;               /* where members[] starts */
    char name[CHIP_REGISTRY_NAME_MAX + 1]; /* the registry's name, NUL-terminated */
    uint8_t reserved0[7];

    /* Dynamic fields, written under the seqlock (dead: at any time). */
    uint64_t seq;          /* seqlock: even = stable, odd = write in progress */
    uint64_t generation;   /* incremented once per committed change */
    uint32_t dead;         /* 1: this region is abandoned, re-open by name */
    uint32_t group_count;  /* live groups */
    uint32_t member_count; /* used member slots */
    uint32_t group_head;   /* first live group in creation order, or NONE */
    uint32_t group_tail;   /* last live group, or NONE */
    uint32_t reserved1;
} chip_registry_header;

typedef struct chip_registry_group {
    char name[CHIP_REGISTRY_NAME_MAX + 1]; /* NUL-terminated; [A-Za-z0-9_.:-]{1,64} */
    uint8_t name_len;                      /* 1..64; 0 = free slot */
    uint16_t reserved;
    uint32_t hash;         /* chip_registry_hash(name) */
    uint32_t count;        /* members in the group */
    uint32_t first_member; /* member slot of the earliest join, or NONE */
    uint32_t last_member;  /* member slot of the latest join, or NONE */
    uint32_t prev_group;   /* neighbours in creation order, or NONE */
    uint32_t next_group;
    uint32_t reserved2;
} chip_registry_group;

typedef struct chip_registry_member {
    int32_t pid;    /* the member; 0 = free slot */
    uint32_t group; /* its group slot */
    uint32_t prev;  /* neighbours in join order within the group, or NONE */
    uint32_t next;
} chip_registry_member;

/* FNV-1a 32 of the name's bytes: the hash the index is keyed by. */
static inline uint32_t chip_registry_hash(const char *name, size_t len) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)name[i];
        h *= 16777619u;
    }
    return h;
}

/* The cluster view of a registry (cluster layout version 1).
 *
 * A chipd whose spec has "cluster" (README.md, "Cluster") keeps, beside each
 * registry's region, a second shared-memory object with the registry's
 * members on every host of the cluster as etcd last told it: the name is the
 * registry's region name followed by "@cluster" ("/chip-<hash>-<registry>@cluster";
 * registry names never hold '@'), mode 0644, written by chipd alone.
 *
 *   chip_cluster_header                        at 0
 *   chip_cluster_entry entries[max_entries]    at header.entries_offset
 *
 * entries[0 .. count) are the members, sorted by group name, then node name,
 * then pid (bytewise); the rest is unused. A group's members are therefore
 * consecutive. chipd rewrites the entries under the same seqlock as the local
 * region (header.seq odd while writing; readers copy, fence and check seq;
 * every count and index is untrusted until the check: count is bounded by
 * max_entries, names by their NUL within 65 bytes), and the same lifetime
 * rules (header.dead, magic written last). A view with more members than
 * max_entries (the registry's max_members) keeps the first max_entries.
 */

/* "CHIPCLU1" read as a little-endian uint64_t. */
#define CHIP_CLUSTER_MAGIC 0x31554c4350494843ULL
#define CHIP_CLUSTER_VERSION 1u

typedef struct chip_cluster_header {
    uint64_t magic;          /* CHIP_CLUSTER_MAGIC */
    uint32_t version;        /* CHIP_CLUSTER_VERSION */
    uint32_t header_size;    /* sizeof(chip_cluster_header) */
    uint64_t total_size;     /* bytes of the whole region */
    uint32_t max_entries;    /* entry slots */
    uint32_t entry_size;     /* sizeof(chip_cluster_entry) */
    uint64_t entries_offset; /* where entries[] starts */
    int32_t writer_pid;      /* chipd's pid */
    uint32_t reserved0;
    char name[CHIP_REGISTRY_NAME_MAX + 1]; /* the registry's name, NUL-terminated */
    uint8_t reserved1[7];

    /* Dynamic fields, written under the seqlock (dead: at any time). */
    uint64_t seq;        /* seqlock: even = stable, odd = write in progress */
    uint64_t generation; /* incremented once per committed change */
    uint32_t dead;       /* 1: this region is abandoned, re-open by name */
    uint32_t count;      /* entries in use */
    uint32_t connected;  /* 1 while chipd's session with etcd is up (the view is current) */
    uint32_t reserved2;
} chip_cluster_header;

typedef struct chip_cluster_entry {
    char group[CHIP_REGISTRY_NAME_MAX + 1]; /* NUL-terminated */
    char node[CHIP_REGISTRY_NAME_MAX + 1];  /* NUL-terminated */
    uint16_t reserved;
    int32_t pid;
} chip_cluster_entry;

#ifdef __cplusplus
}
#endif

#endif /* CHIP_REGISTRY_H */
