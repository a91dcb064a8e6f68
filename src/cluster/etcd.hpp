// etcd's v3 JSON gateway, as text: the request bodies chipd sends (/v3/kv/*,
// /v3/lease/*, /v3/watch), the answers it reads, and the key space of chip's
// cluster (README.md, "Cluster"):
//
//   /chip/<name>/<registry>/<group>/<node>/<pid>   {"node", "pid", "path"}
//   /chip/<name>/@signal/<node>/<id>                {"from", "registry", "group", "signal",
//   "lease"} /chip/<name>/@reply/<from>/<id>/<node>          {"node", "signalled": [pid, ...]}
//
// Registry names never hold '@', so the request and reply keys live beside
// the memberships under one prefix and one watch. The gateway carries keys and
// values as base64 and 64-bit integers as JSON strings.
//
// Pure: no I/O, no clock. Parsing never throws: whatever etcd (or something
// else writing under the prefix) sends, the answer is a value or nullopt.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chip::cluster {

// RFC 4648 base64 with padding.
std::string base64_encode(std::string_view bytes);
// nullopt for anything that is not canonical padded base64.
std::optional<std::string> base64_decode(std::string_view text);

// The end of the range of every key starting with PREFIX (etcd's range_end):
// PREFIX with its last byte incremented (bytes 0xff dropped first).
std::string prefix_end(std::string_view prefix);

// "/chip/<name>/".
std::string cluster_prefix(std::string_view name);

// A membership as stored: its key's parts and its value's path.
struct MemberKey {
    std::string registry;
    std::string group;
    std::string node;
    pid_t pid = 0;
};
std::string member_key(std::string_view name, const MemberKey &m);
std::string member_value(std::string_view node, pid_t pid, std::string_view path);
// KEY's parts when it is a well-formed membership key under NAME's prefix
// (names by the registry rules, pid a positive decimal without sign or
// leading zero), else nullopt.
std::optional<MemberKey> parse_member_key(std::string_view name, std::string_view key);
// Whether VALUE is a membership value that agrees with its key (same node and pid).
bool valid_member_value(std::string_view value, const MemberKey &m);

// Signal requests (chipctl signal --cluster) and their replies.
struct SignalRequest {
    std::string node;  // the target (in the key)
    std::string id;    // the request's id (in the key): [A-Za-z0-9_.:-]{1,64}
    std::string from;  // the node that asked, which reads the replies
    std::string registry;
    std::string group;
    int signal = 0;
    std::int64_t lease = 0;  // the request's lease, which its replies go on
};
std::string signal_key(std::string_view name, std::string_view node, std::string_view id);
std::string signal_value(const SignalRequest &r);
std::optional<SignalRequest> parse_signal(std::string_view name, std::string_view key,
                                          std::string_view value);
struct SignalReply {
    std::string from;  // in the key
    std::string id;
    std::string node;  // who answered
    std::vector<pid_t> signalled;
};
std::string reply_key(std::string_view name, std::string_view from, std::string_view id,
                      std::string_view node);
std::string reply_value(std::string_view node, const std::vector<pid_t> &signalled);
std::optional<SignalReply> parse_reply(std::string_view name, std::string_view key,
                                       std::string_view value);

// ---- request bodies ----

std::string lease_grant_body(unsigned ttl_seconds);
std::string lease_keepalive_body(std::int64_t lease);
std::string lease_revoke_body(std::int64_t lease);
// The range of every key under PREFIX.
std::string range_prefix_body(std::string_view prefix);
// One write of a transaction.
struct Write {
    bool put = true;  // else a delete of KEY
    std::string key;
    std::string value;
    std::int64_t lease = 0;  // 0: no lease
};
// A transaction without compares: every write succeeds or none does.
std::string txn_body(const std::vector<Write> &writes);
// A watch of every key under PREFIX from revision START.
std::string watch_body(std::string_view prefix, std::int64_t start);

// ---- answers ----

// A gateway error ({"error", "code", "message"}): its message; nullopt when
// BODY is not one.
std::optional<std::string> error_of(std::string_view body);
// LeaseGrant: the lease id; nullopt when BODY is no grant.
std::optional<std::int64_t> parse_grant(std::string_view body);
// LeaseKeepAlive: the remaining TTL (0: the lease is gone); nullopt when BODY
// is no keepalive answer.
std::optional<std::int64_t> parse_keepalive(std::string_view body);

struct KeyValue {
    std::string key;
    std::string value;
    std::int64_t lease = 0;
    std::int64_t mod_revision = 0;
};
struct Range {
    std::int64_t revision = 0;  // the store's revision at the read
    std::vector<KeyValue> kvs;
    std::size_t undecodable = 0;  // entries dropped: not base64, not objects
};
std::optional<Range> parse_range(std::string_view body);

// One message of a watch stream.
struct WatchEvent {
    bool put = true;  // else a delete
    KeyValue kv;
};
struct WatchMessage {
    bool created = false;
    bool canceled = false;              // the watch is over (compaction, an error)
    std::int64_t compact_revision = 0;  // set when canceled by compaction
    std::int64_t revision = 0;
    std::vector<WatchEvent> events;
    std::size_t undecodable = 0;
};
std::optional<WatchMessage> parse_watch_message(std::string_view line);

// Splits a watch stream, which arrives in arbitrary chunks, into its
// newline-delimited JSON messages. Bounded: a line over LIMIT bytes is an error.
class LineBuffer {
public:
    explicit LineBuffer(std::size_t limit) : limit_(limit) {}
    // Appends CHUNK; false when a line grew past the limit (the stream is bad).
    bool append(std::string_view chunk);
    // The next complete line, without its newline; nullopt when none yet.
    std::optional<std::string> next();
    void clear() {
        buf_.clear();
        start_ = 0;
    }

private:
    std::size_t limit_;
    std::string buf_;
    std::size_t start_ = 0;
};

}  // namespace chip::cluster
