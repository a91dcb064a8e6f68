// One chipd's session with etcd (README.md, "Cluster"), as a pure state
// machine on a clock it is given: it decides which gateway calls to make and
// what their answers mean; the shell (daemon/cluster.hpp) makes the calls over
// HTTP and feeds the answers, stream chunks and timer expiries back.
//
//   Connecting --grant ok--> Syncing --range ok--> Connected
//        ^                                             |
//        +------ any failure (backoff, next endpoint) -+
//   Connected/any --close()--> Closing --revoke answered or failed--> Closed
//
// Connecting grants a lease of lease_ttl seconds. Syncing reads every key
// under /chip/<name>/ at once: the view is rebuilt from that read; this
// node's keys that are not on the new lease and not wanted any more are
// deleted, and every membership is put again on the new lease (one
// transaction); then a watch from the read's revision + 1 keeps the view up to
// date. Connected keeps the lease alive every lease_ttl/3. Any failure (a call
// that fails or times out, a watch that ends or is canceled, a keepalive that
// finds the lease gone) cancels every call in flight and retries after a
// backoff of 100 ms doubling to 5 s, on the next endpoint: the resync puts
// everything right. The first failure is warned about once, and the return.
//
// Writes are serialized: one transaction in flight at a time, carrying every
// change queued meanwhile (at most 128 operations, etcd's default limit), so a
// join and a leave of the same key always reach etcd in order.
//
// The view keeps only well-formed keys whose value agrees with the key;
// anything else under the prefix is ignored with a warning (at most one per
// 10 s, with a count of what was ignored meanwhile).
//
// Signals (chipctl signal --cluster): the asking node grants a short lease,
// puts one request key per node seen on it, and collects the reply keys
// until every node answered or the timeout; the target node carries a request
// out (take_signals, signalled), puts its reply on the request's lease and
// deletes the request.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/etcd.hpp"

namespace chip::cluster {

using Time = std::chrono::nanoseconds;  // monotonic

struct Config {
    std::vector<std::string> endpoints;  // "http(s)://HOST:PORT"
    std::string name;
    std::string node;
    unsigned lease_ttl = 10;
};

enum class State { Connecting, Syncing, Connected, Closing, Closed };
const char *state_name(State s);

// A gateway call to make: POST BODY to URL.
struct Call {
    std::uint64_t id;
    std::string url;
    std::string body;
    bool stream = false;                // the watch: answered by chunks until it ends
    std::chrono::milliseconds timeout;  // 0: none (the watch)
};

// A member of the cluster view.
struct Entry {
    std::string registry;
    std::string group;
    std::string node;
    pid_t pid = 0;
    bool operator==(const Entry &) const = default;
};

// The outcome of a cluster-wide signal.
struct SignalOutcome {
    std::uint64_t ticket;
    std::map<std::string, std::vector<pid_t>> signalled;  // node -> pids, nodes that answered
    std::vector<std::string> silent;                      // nodes asked that did not answer
    std::string error;                                    // non-empty: not sent at all
};

class Session {
public:
    explicit Session(Config config);

    void start(Time now);
    // A membership of this chipd began / ended.
    void joined(const std::string &registry, const std::string &group, pid_t pid,
                const std::string &path, Time now);
    void left(const std::string &registry, const std::string &group, pid_t pid, Time now);
    // Call ID finished: OK when it got an HTTP 200 answer BODY, else ERROR
    // says why (for the watch: the stream ended).
    void on_reply(std::uint64_t id, bool ok, std::string_view body, std::string_view error,
                  Time now);
    // A chunk of the watch stream ID.
    void on_stream(std::uint64_t id, std::string_view chunk, Time now);
    void on_time(Time now);
    // Clean shutdown: the lease is revoked (its keys go with it).
    void close(Time now);
    bool closed() const { return state_ == State::Closed; }

    // A signal of GROUP of REGISTRY on every node seen: its ticket; the
    // outcome comes from take_outcomes() within TIMEOUT.
    std::uint64_t send_signal(const std::string &registry, const std::string &group, int sig,
                              std::chrono::milliseconds timeout, Time now);
    // Requests addressed to this node, to carry out.
    std::vector<SignalRequest> take_signals();
    // REQUEST was carried out: SIGNALLED got the signal.
    void signalled(const SignalRequest &request, const std::vector<pid_t> &signalled, Time now);
    std::vector<SignalOutcome> take_outcomes();

    // What the shell does next.
    std::vector<Call> take_calls();
    std::vector<std::uint64_t> take_cancels();
    std::vector<std::string> take_warnings();
    std::optional<Time> next_deadline() const;

    // The view, by key; view_generation() changes whenever it does.
    const std::map<std::string, Entry> &view() const { return view_; }
    std::uint64_t view_generation() const { return view_gen_; }

    State state() const { return state_; }
    std::int64_t lease() const { return lease_; }
    const Config &config() const { return config_; }
    const std::string &endpoint() const { return config_.endpoints[endpoint_]; }
    // The nodes with a member in the view, and this one.
    std::set<std::string> nodes_seen() const;
    const std::string &last_error() const { return last_error_; }

private:
    enum class Kind { Grant, Range, Watch, Txn, KeepAlive, Revoke, SignalGrant, SignalTxn, Other };
    std::uint64_t call(Kind kind, std::string path, std::string body, bool stream = false);
    void grant(Time now);
    void fail(std::string why, Time now);
    void synced(const Range &range, Time now);
    void flush();
    void queue(Write w);
    void apply_put(const KeyValue &kv, Time now);
    void apply_delete(const std::string &key, Time now);
    void garbage(const std::string &key, Time now);
    void watch_line(const std::string &line, Time now);
    void finish_signal(std::uint64_t ticket);
    std::chrono::milliseconds call_timeout() const;

    Config config_;
    std::string prefix_;
    State state_ = State::Connecting;
    std::size_t endpoint_ = 0;
    std::int64_t lease_ = 0;
    unsigned attempts_ = 0;
    bool warned_ = false;
    std::string last_error_;
    std::optional<Time> retry_at_;
    std::optional<Time> keepalive_at_;
    std::optional<Time> close_by_;

    std::uint64_t next_id_ = 1;
    std::map<std::uint64_t, Kind> in_flight_;
    std::uint64_t watch_id_ = 0;
    std::uint64_t txn_id_ = 0;
    std::uint64_t keepalive_id_ = 0;
    LineBuffer lines_{4u << 20};
    std::vector<Call> calls_;
    std::vector<std::uint64_t> cancels_;
    std::vector<std::string> warnings_;

    std::map<std::string, std::string> own_;  // key -> value: this chipd's memberships
    std::vector<Write> pending_;

    std::map<std::string, Entry> view_;
    std::uint64_t view_gen_ = 1;
    std::optional<Time> garbage_quiet_until_;
    std::size_t garbage_suppressed_ = 0;
    std::optional<Time> collision_quiet_until_;

    // Signals this node asked for.
    struct Outgoing {
        std::string id;
        std::string registry;
        std::string group;
        int signal = 0;
        std::int64_t lease = 0;
        std::uint64_t grant_call = 0;
        std::set<std::string> asked;
        SignalOutcome outcome;
        Time deadline;
    };
    std::map<std::uint64_t, Outgoing> outgoing_;  // by ticket
    std::uint64_t next_ticket_ = 1;
    std::vector<SignalOutcome> outcomes_;
    // Requests addressed here: to carry out, and those already seen (by key).
    std::vector<SignalRequest> incoming_;
    std::map<std::string, std::int64_t> request_leases_;  // key -> its lease
};

}  // namespace chip::cluster
