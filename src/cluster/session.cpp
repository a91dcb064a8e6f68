#include "cluster/session.hpp"

#include <algorithm>
#include <utility>

namespace chip::cluster {

namespace {

using std::chrono::milliseconds;

constexpr milliseconds kFirstBackoff{100};
constexpr milliseconds kMaxBackoff{5000};
constexpr milliseconds kCloseBudget{1000};
constexpr std::chrono::seconds kWarnEvery{10};
constexpr std::size_t kMaxTxnOps = 128;

}  // namespace

const char *state_name(State s) {
    switch (s) {
        case State::Connecting:
            return "connecting";
        case State::Syncing:
            return "syncing";
        case State::Connected:
            return "connected";
        case State::Closing:
            return "closing";
        case State::Closed:
            return "closed";
    }
    return "?";
}

Session::Session(Config config)
    : config_(std::move(config)), prefix_(cluster_prefix(config_.name)) {}

milliseconds Session::call_timeout() const {
    // Well within a lease period: a stuck call is a failure in time to resync.
    return std::clamp(milliseconds(config_.lease_ttl * 1000 / 3), milliseconds(500),
                      milliseconds(5000));
}

std::uint64_t Session::call(Kind kind, std::string path, std::string body, bool stream) {
    std::uint64_t id = next_id_++;
    in_flight_[id] = kind;
    calls_.push_back(Call{id, endpoint() + path, std::move(body), stream,
                          stream ? milliseconds(0) : call_timeout()});
    return id;
}

void Session::start(Time now) {
    grant(now);
}

void Session::grant(Time now) {
    (void)now;
    state_ = State::Connecting;
    retry_at_.reset();
    call(Kind::Grant, "/v3/lease/grant", lease_grant_body(config_.lease_ttl));
}

void Session::fail(std::string why, Time now) {
    if (state_ == State::Closing || state_ == State::Closed) return;
    last_error_ = why;
    for (const auto &[id, kind] : in_flight_) {
        // Signal grants are their own business: they fail on their own.
        if (kind == Kind::SignalGrant || kind == Kind::SignalTxn) continue;
        cancels_.push_back(id);
    }
    std::erase_if(in_flight_, [](const auto &p) {
        return p.second != Kind::SignalGrant && p.second != Kind::SignalTxn;
    });
    watch_id_ = txn_id_ = keepalive_id_ = 0;
    lines_.clear();
    pending_.clear();
    keepalive_at_.reset();
    if (!warned_) {
        warnings_.push_back("cluster: etcd at " + endpoint() + ": " + why +
                            "; local supervision goes on, retrying with backoff (no further "
                            "warning until it is back)");
        warned_ = true;
    }
    auto delay = kFirstBackoff * (1u << std::min(attempts_, 6u));
    if (delay > kMaxBackoff) delay = kMaxBackoff;
    ++attempts_;
    endpoint_ = (endpoint_ + 1) % config_.endpoints.size();
    state_ = State::Connecting;
    retry_at_ = now + delay;
}

void Session::joined(const std::string &registry, const std::string &group, pid_t pid,
                     const std::string &path, Time now) {
    (void)now;
    std::string key = member_key(config_.name, {registry, group, config_.node, pid});
    std::string value = member_value(config_.node, pid, path);
    own_[key] = value;
    if (state_ == State::Connected) queue(Write{true, key, value, lease_});
}

void Session::left(const std::string &registry, const std::string &group, pid_t pid, Time now) {
    (void)now;
    std::string key = member_key(config_.name, {registry, group, config_.node, pid});
    if (own_.erase(key) == 0) return;
    if (state_ == State::Connected) queue(Write{false, key, {}, 0});
}

void Session::queue(Write w) {
    pending_.push_back(std::move(w));
    flush();
}

void Session::flush() {
    if (txn_id_ || pending_.empty() || state_ != State::Connected) return;
    std::size_t n = std::min(pending_.size(), kMaxTxnOps);
    std::vector<Write> batch(std::make_move_iterator(pending_.begin()),
                             std::make_move_iterator(pending_.begin() + n));
    pending_.erase(pending_.begin(), pending_.begin() + n);
    txn_id_ = call(Kind::Txn, "/v3/kv/txn", txn_body(batch));
}

void Session::on_reply(std::uint64_t id, bool ok, std::string_view body, std::string_view error,
                       Time now) {
    auto it = in_flight_.find(id);
    if (it == in_flight_.end()) return;  // canceled meanwhile
    Kind kind = it->second;
    in_flight_.erase(it);
    std::string why = ok ? std::string() : std::string(error);
    if (ok)
        if (auto e = error_of(body)) why = "etcd answered an error: " + *e;
    switch (kind) {
        case Kind::Grant: {
            auto lease = why.empty() ? parse_grant(body) : std::nullopt;
            if (!lease) return fail(why.empty() ? "lease grant: unexpected answer" : why, now);
            lease_ = *lease;
            state_ = State::Syncing;
            call(Kind::Range, "/v3/kv/range", range_prefix_body(prefix_));
            return;
        }
        case Kind::Range: {
            auto range = why.empty() ? parse_range(body) : std::nullopt;
            if (!range) return fail(why.empty() ? "range read: unexpected answer" : why, now);
            return synced(*range, now);
        }
        case Kind::Watch:
            watch_id_ = 0;
            return fail(why.empty() ? "the watch ended" : "the watch ended: " + why, now);
        case Kind::Txn:
            txn_id_ = 0;
            if (!why.empty()) return fail("write: " + why, now);
            flush();
            return;
        case Kind::KeepAlive: {
            keepalive_id_ = 0;
            auto ttl = why.empty() ? parse_keepalive(body) : std::nullopt;
            if (!ttl) return fail(why.empty() ? "keepalive: unexpected answer" : why, now);
            if (*ttl <= 0) return fail("the lease expired", now);
            return;
        }
        case Kind::Revoke:
            state_ = State::Closed;
            return;
        case Kind::SignalGrant:
            for (auto &[ticket, out] : outgoing_) {
                if (out.grant_call != id) continue;
                auto lease = why.empty() ? parse_grant(body) : std::nullopt;
                if (!lease) {
                    out.outcome.error = why.empty() ? "lease grant: unexpected answer" : why;
                    finish_signal(ticket);
                    return;
                }
                out.lease = *lease;
                std::vector<Write> writes;
                for (const auto &node : nodes_seen()) {
                    SignalRequest r{node,      out.id,     config_.node, out.registry,
                                    out.group, out.signal, out.lease};
                    writes.push_back(Write{true, signal_key(config_.name, node, out.id),
                                           signal_value(r), out.lease});
                    out.asked.insert(node);
                }
                call(Kind::SignalTxn, "/v3/kv/txn", txn_body(writes));
                return;
            }
            return;
        case Kind::SignalTxn:
        case Kind::Other:
            return;
    }
}

void Session::synced(const Range &range, Time now) {
    // The view, anew.
    view_.clear();
    std::vector<Write> writes;
    for (const auto &kv : range.kvs) {
        if (auto m = parse_member_key(config_.name, kv.key);
            m && m->node == config_.node && kv.lease != lease_) {
            // Ours from before (an old lease, a chipd that was restarted):
            // what is still a membership is put again below, the rest goes.
            if (!own_.count(kv.key)) writes.push_back(Write{false, kv.key, {}, 0});
            continue;
        }
        apply_put(kv, now);
    }
    if (range.undecodable) garbage("(" + std::to_string(range.undecodable) + " undecodable)", now);
    for (const auto &[key, value] : own_) writes.push_back(Write{true, key, value, lease_});
    ++view_gen_;
    state_ = State::Connected;
    if (warned_) warnings_.push_back("cluster: etcd at " + endpoint() + " reached again: resynced");
    warned_ = false;
    attempts_ = 0;
    last_error_.clear();
    pending_ = std::move(writes);
    flush();
    lines_.clear();
    watch_id_ = call(Kind::Watch, "/v3/watch", watch_body(prefix_, range.revision + 1), true);
    keepalive_at_ = now + std::chrono::milliseconds(config_.lease_ttl * 1000 / 3);
}

void Session::on_stream(std::uint64_t id, std::string_view chunk, Time now) {
    if (id != watch_id_ || !in_flight_.count(id)) return;
    if (!lines_.append(chunk)) return fail("the watch sent a line over 4 MiB", now);
    while (auto line = lines_.next()) {
        watch_line(*line, now);
        if (id != watch_id_) return;  // failed meanwhile
    }
}

void Session::watch_line(const std::string &line, Time now) {
    auto m = parse_watch_message(line);
    if (!m) {
        // A line that is not a watch message: the stream is not what we think.
        if (auto e = error_of(line)) return fail("the watch failed: " + *e, now);
        return fail("the watch sent something else than JSON messages", now);
    }
    if (m->canceled)
        return fail(
            m->compact_revision ? "the watch fell behind a compaction" : "the watch was canceled",
            now);
    for (const auto &e : m->events) {
        if (e.put)
            apply_put(e.kv, now);
        else
            apply_delete(e.kv.key, now);
    }
    if (m->undecodable) garbage("(" + std::to_string(m->undecodable) + " undecodable)", now);
}

void Session::apply_put(const KeyValue &kv, Time now) {
    std::string_view rest(kv.key);
    if (!rest.starts_with(prefix_)) return garbage(kv.key, now);
    rest.remove_prefix(prefix_.size());
    if (rest.starts_with("@signal/")) {
        auto r = parse_signal(config_.name, kv.key, kv.value);
        if (!r) return garbage(kv.key, now);
        if (r->node != config_.node || request_leases_.count(kv.key)) return;
        request_leases_[kv.key] = r->lease;
        incoming_.push_back(std::move(*r));
        return;
    }
    if (rest.starts_with("@reply/")) {
        auto r = parse_reply(config_.name, kv.key, kv.value);
        if (!r) return garbage(kv.key, now);
        if (r->from != config_.node) return;
        for (auto &[ticket, out] : outgoing_) {
            if (out.id != r->id || !out.asked.count(r->node)) continue;
            out.outcome.signalled[r->node] = r->signalled;
            if (out.outcome.signalled.size() == out.asked.size()) finish_signal(ticket);
            return;
        }
        return;
    }
    auto m = parse_member_key(config_.name, kv.key);
    if (!m || !valid_member_value(kv.value, *m)) return garbage(kv.key, now);
    if (m->node == config_.node && lease_ && kv.lease != lease_ && state_ == State::Connected) {
        // Not ours: another chipd calls itself by our name.
        if (!collision_quiet_until_ || now >= *collision_quiet_until_) {
            warnings_.push_back("cluster: another host writes as node \"" + config_.node + "\" (" +
                                kv.key + "); node names must be unique in a cluster");
            collision_quiet_until_ = now + kWarnEvery;
        }
    }
    Entry e{m->registry, m->group, m->node, m->pid};
    auto it = view_.find(kv.key);
    if (it != view_.end() && it->second == e) return;
    view_[kv.key] = std::move(e);
    ++view_gen_;
}

void Session::apply_delete(const std::string &key, Time now) {
    (void)now;
    if (view_.erase(key)) {
        ++view_gen_;
        return;
    }
    request_leases_.erase(key);
}

void Session::garbage(const std::string &key, Time now) {
    if (garbage_quiet_until_ && now < *garbage_quiet_until_) {
        ++garbage_suppressed_;
        return;
    }
    std::string more = garbage_suppressed_ ? " (and " + std::to_string(garbage_suppressed_) +
                                                 " more since the last warning)"
                                           : "";
    warnings_.push_back("cluster: ignored a key under " + prefix_ +
                        " that is no chip key: " + key.substr(0, 200) + more);
    garbage_suppressed_ = 0;
    garbage_quiet_until_ = now + kWarnEvery;
}

void Session::on_time(Time now) {
    if (state_ == State::Closing && close_by_ && now >= *close_by_) {
        state_ = State::Closed;
        return;
    }
    if (state_ == State::Connecting && retry_at_ && now >= *retry_at_) grant(now);
    if (state_ == State::Connected && keepalive_at_ && now >= *keepalive_at_) {
        if (!keepalive_id_)
            keepalive_id_ =
                call(Kind::KeepAlive, "/v3/lease/keepalive", lease_keepalive_body(lease_));
        keepalive_at_ = now + std::chrono::milliseconds(config_.lease_ttl * 1000 / 3);
    }
    std::vector<std::uint64_t> over;
    for (const auto &[ticket, out] : outgoing_)
        if (now >= out.deadline) over.push_back(ticket);
    for (auto ticket : over) finish_signal(ticket);
}

void Session::close(Time now) {
    if (state_ == State::Closing || state_ == State::Closed) return;
    for (const auto &[id, kind] : in_flight_) cancels_.push_back(id);
    in_flight_.clear();
    watch_id_ = txn_id_ = keepalive_id_ = 0;
    for (auto &[ticket, out] : outgoing_) {
        (void)out;
        outcomes_.push_back(SignalOutcome{ticket, {}, {}, "chipd is shutting down"});
    }
    outgoing_.clear();
    if (state_ == State::Connected || state_ == State::Syncing) {
        state_ = State::Closing;
        close_by_ = now + kCloseBudget;
        call(Kind::Revoke, "/v3/lease/revoke", lease_revoke_body(lease_));
    } else {
        state_ = State::Closed;
    }
}

std::uint64_t Session::send_signal(const std::string &registry, const std::string &group, int sig,
                                   std::chrono::milliseconds timeout, Time now) {
    std::uint64_t ticket = next_ticket_++;
    Outgoing out;
    out.id = std::to_string(lease_) + "-" + std::to_string(ticket);
    out.registry = registry;
    out.group = group;
    out.signal = sig;
    out.outcome.ticket = ticket;
    out.deadline = now + timeout;
    if (state_ != State::Connected) {
        out.outcome.error = "not connected to etcd (" + std::string(state_name(state_)) +
                            (last_error_.empty() ? "" : ": " + last_error_) + ")";
        outcomes_.push_back(std::move(out.outcome));
        return ticket;
    }
    // The requests outlive neither the timeout nor this chipd by much.
    auto ttl = std::chrono::duration_cast<std::chrono::seconds>(timeout).count() + 2;
    out.grant_call =
        call(Kind::SignalGrant, "/v3/lease/grant", lease_grant_body(static_cast<unsigned>(ttl)));
    outgoing_.emplace(ticket, std::move(out));
    return ticket;
}

void Session::finish_signal(std::uint64_t ticket) {
    auto it = outgoing_.find(ticket);
    if (it == outgoing_.end()) return;
    Outgoing &out = it->second;
    for (const auto &node : out.asked)
        if (!out.outcome.signalled.count(node)) out.outcome.silent.push_back(node);
    // The requests and replies go with their lease.
    if (out.lease && state_ == State::Connected)
        call(Kind::Other, "/v3/lease/revoke", lease_revoke_body(out.lease));
    outcomes_.push_back(std::move(out.outcome));
    outgoing_.erase(it);
}

std::vector<SignalRequest> Session::take_signals() {
    return std::exchange(incoming_, {});
}

void Session::signalled(const SignalRequest &request, const std::vector<pid_t> &signalled,
                        Time now) {
    (void)now;
    if (state_ != State::Connected) return;
    std::vector<Write> writes{
        Write{true, reply_key(config_.name, request.from, request.id, config_.node),
              reply_value(config_.node, signalled), request.lease},
        Write{false, signal_key(config_.name, config_.node, request.id), {}, 0}};
    call(Kind::Other, "/v3/kv/txn", txn_body(writes));
}

std::vector<SignalOutcome> Session::take_outcomes() {
    return std::exchange(outcomes_, {});
}

std::vector<Call> Session::take_calls() {
    return std::exchange(calls_, {});
}

std::vector<std::uint64_t> Session::take_cancels() {
    return std::exchange(cancels_, {});
}

std::vector<std::string> Session::take_warnings() {
    return std::exchange(warnings_, {});
}

std::optional<Time> Session::next_deadline() const {
    std::optional<Time> next;
    auto consider = [&](const std::optional<Time> &t) {
        if (t && (!next || *t < *next)) next = t;
    };
    if (state_ == State::Connecting) consider(retry_at_);
    if (state_ == State::Connected) consider(keepalive_at_);
    if (state_ == State::Closing) consider(close_by_);
    for (const auto &[ticket, out] : outgoing_) consider(out.deadline);
    return next;
}

std::set<std::string> Session::nodes_seen() const {
    std::set<std::string> nodes{config_.node};
    for (const auto &[key, e] : view_) nodes.insert(e.node);
    return nodes;
}

}  // namespace chip::cluster
