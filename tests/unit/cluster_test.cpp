// The cluster's etcd protocol (cluster/etcd.hpp) and one chipd's session with
// etcd (cluster/session.hpp) on a fake clock: the test plays etcd, answering
// the calls the session asks for.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "cluster/etcd.hpp"
#include "cluster/session.hpp"

using namespace chip::cluster;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

std::string b64(std::string_view s) {
    return base64_encode(s);
}

// A range answer holding KVS (key, value, lease) at REVISION.
std::string range_answer(
    std::int64_t revision,
    const std::vector<std::tuple<std::string, std::string, std::int64_t>> &kvs) {
    json a{{"header", {{"revision", std::to_string(revision)}}}};
    for (const auto &[k, v, lease] : kvs)
        a["kvs"].push_back({{"key", b64(k)},
                            {"value", b64(v)},
                            {"lease", std::to_string(lease)},
                            {"mod_revision", "1"}});
    return a.dump();
}

std::string watch_line(
    const std::vector<std::tuple<bool, std::string, std::string, std::int64_t>> &events) {
    json r{{"result", {{"header", {{"revision", "9"}}}}}};
    for (const auto &[put, k, v, lease] : events) {
        json e{{"kv", {{"key", b64(k)}, {"value", b64(v)}, {"lease", std::to_string(lease)}}}};
        if (!put) e["type"] = "DELETE";
        r["result"]["events"].push_back(e);
    }
    return r.dump() + "\n";
}

// A session and the calls it asked for, by what they call.
struct World {
    Session s{Config{{"http://e1:2379", "http://e2:2379"}, "prod", "a", 3}};
    std::vector<Call> calls;
    Time now{1'000'000'000};

    void take() {
        for (auto &c : s.take_calls()) calls.push_back(std::move(c));
    }
    // The oldest pending call whose URL ends with PATH; fails without one.
    Call pop(const std::string &path) {
        take();
        for (auto it = calls.begin(); it != calls.end(); ++it)
            if (it->url.ends_with(path)) {
                Call c = *it;
                calls.erase(it);
                return c;
            }
        FAIL("no call to " << path);
        return {};
    }
    bool has(const std::string &path) {
        take();
        return std::any_of(calls.begin(), calls.end(),
                           [&](const Call &c) { return c.url.ends_with(path); });
    }
    void answer(const Call &c, const std::string &body) { s.on_reply(c.id, true, body, "", now); }
    void failed(const Call &c, const std::string &why) { s.on_reply(c.id, false, "", why, now); }

    // Start, grant lease 7, read RANGE: connected, with the watch open.
    Call connect(const std::string &range = range_answer(5, {})) {
        s.start(now);
        answer(pop("/v3/lease/grant"), R"({"header":{},"ID":"7","TTL":"3"})");
        answer(pop("/v3/kv/range"), range);
        REQUIRE(s.state() == State::Connected);
        return pop("/v3/watch");
    }
};

std::vector<json> txn_ops(const Call &c) {
    std::vector<json> ops;
    json body = json::parse(c.body);
    for (const auto &op : body["success"]) ops.push_back(op);
    return ops;
}

std::string key_of(const json &op) {
    const json &inner = op.contains("request_put") ? op["request_put"] : op["request_delete_range"];
    return *base64_decode(inner["key"].get<std::string>());
}

}  // namespace

TEST_CASE("base64 round trips and refuses what is not canonical") {
    for (std::string s : std::vector<std::string>{"", "f", "fo", "foo", "foob", "fooba", "foobar",
                                                  std::string("\0\xff\x10", 3)})
        CHECK(base64_decode(base64_encode(s)) == s);
    CHECK(base64_encode("foobar") == "Zm9vYmFy");
    CHECK(base64_encode("fo") == "Zm8=");
    CHECK_FALSE(base64_decode("Zm8").has_value());
    CHECK_FALSE(base64_decode("Zm9=").has_value());  // non-zero padding bits
    CHECK_FALSE(base64_decode("Z=8=").has_value());
    CHECK_FALSE(base64_decode("Zm8*").has_value());
}

TEST_CASE("prefix_end is the prefix with its last byte incremented") {
    CHECK(prefix_end("/chip/p/") == "/chip/p0");
    CHECK(prefix_end(std::string("a\xff", 2)) == "b");
}

TEST_CASE("member keys: made and parsed; anything else is refused") {
    MemberKey m{"jobs", "g:1", "host-a", 42};
    CHECK(member_key("prod", m) == "/chip/prod/jobs/g:1/host-a/42");
    auto back = parse_member_key("prod", "/chip/prod/jobs/g:1/host-a/42");
    REQUIRE(back.has_value());
    CHECK(back->registry == "jobs");
    CHECK(back->group == "g:1");
    CHECK(back->node == "host-a");
    CHECK(back->pid == 42);
    for (const char *bad :
         {"/chip/prod/jobs/g/host-a", "/chip/prod/jobs/g/host-a/42/x", "/chip/other/jobs/g/a/42",
          "/chip/prod/jobs/g/a/042", "/chip/prod/jobs/g/a/-1", "/chip/prod/jobs/g/a/0",
          "/chip/prod/jobs/g/a/99999999999", "/chip/prod/jo bs/g/a/4", "/chip/prod//g/a/4",
          "/chip/prod/@signal/a/1/2"}) {
        INFO(bad);
        CHECK_FALSE(parse_member_key("prod", bad).has_value());
    }
    CHECK(valid_member_value(member_value("host-a", 42, "/w"), m));
    CHECK_FALSE(valid_member_value(member_value("host-b", 42, "/w"), m));
    CHECK_FALSE(valid_member_value(member_value("host-a", 43, "/w"), m));
    CHECK_FALSE(valid_member_value("garbage", m));
    CHECK_FALSE(valid_member_value("[]", m));
}

TEST_CASE("signal requests and replies round trip") {
    SignalRequest r{"b", "7-1", "a", "jobs", "g", 15, 99};
    auto back = parse_signal("prod", signal_key("prod", "b", "7-1"), signal_value(r));
    REQUIRE(back.has_value());
    CHECK(back->node == "b");
    CHECK(back->from == "a");
    CHECK(back->signal == 15);
    CHECK(back->lease == 99);
    CHECK_FALSE(parse_signal("prod", signal_key("prod", "b", "7-1"), "{}").has_value());
    auto reply = parse_reply("prod", reply_key("prod", "a", "7-1", "b"), reply_value("b", {3, 4}));
    REQUIRE(reply.has_value());
    CHECK(reply->signalled == std::vector<pid_t>{3, 4});
    CHECK_FALSE(parse_reply("prod", reply_key("prod", "a", "7-1", "b"), R"({"signalled":[-1]})"));
}

TEST_CASE("answers: grant, keepalive, range, watch messages, errors") {
    CHECK(parse_grant(R"({"header":{},"ID":"2324035710339857157","TTL":"5"})") ==
          2324035710339857157);
    CHECK_FALSE(parse_grant(R"({"error":"x"})").has_value());
    CHECK(parse_keepalive(R"({"result":{"ID":"1","TTL":"5"}})") == 5);
    CHECK(parse_keepalive(R"({"result":{"ID":"1"}})") == 0);  // the lease is gone
    CHECK_FALSE(parse_keepalive("<html>").has_value());
    auto range = parse_range(range_answer(12, {{"k", "v", 3}}));
    REQUIRE(range.has_value());
    CHECK(range->revision == 12);
    REQUIRE(range->kvs.size() == 1);
    CHECK(range->kvs[0].key == "k");
    CHECK(range->kvs[0].lease == 3);
    auto m = parse_watch_message(watch_line({{true, "k", "v", 1}, {false, "d", "", 0}}));
    REQUIRE(m.has_value());
    REQUIRE(m->events.size() == 2);
    CHECK(m->events[0].put);
    CHECK_FALSE(m->events[1].put);
    auto c = parse_watch_message(R"({"result":{"canceled":true,"compact_revision":"4"}})");
    REQUIRE(c.has_value());
    CHECK(c->canceled);
    CHECK(error_of(R"({"error":"etcdserver: request timed out","code":14})") ==
          "etcdserver: request timed out");
    CHECK_FALSE(error_of(R"({"result":{}})").has_value());
}

TEST_CASE("LineBuffer splits chunks at newlines and bounds an unfinished line") {
    LineBuffer b(8);
    CHECK(b.append("{\"a\""));
    CHECK_FALSE(b.next().has_value());
    CHECK(b.append(":1}\n{\"b"));
    CHECK(b.next() == "{\"a\":1}");
    CHECK_FALSE(b.next().has_value());
    CHECK(b.append("\":2}\r\n\n"));
    CHECK(b.next() == "{\"b\":2}");
    CHECK_FALSE(b.next().has_value());
    CHECK_FALSE(b.append("123456789"));
}

TEST_CASE("session: grant, range, one transaction of every membership, watch from revision + 1") {
    World w;
    w.s.joined("jobs", "g", 100, "/w1", w.now);  // before connecting: kept
    Call watch = w.connect(range_answer(
        5, {{"/chip/prod/jobs/g/b/200", member_value("b", 200, "/x"), 9},
            {"/chip/prod/jobs/g/a/50", member_value("a", 50, "/old"), 6},  // ours, old lease
            {"/chip/prod/jobs/g/a/100", member_value("a", 100, "/w1"), 6}}));
    CHECK(json::parse(watch.body)["create_request"]["start_revision"] == "6");
    CHECK(watch.stream);
    Call txn = w.pop("/v3/kv/txn");
    auto ops = txn_ops(txn);
    REQUIRE(ops.size() == 2);
    CHECK(ops[0].contains("request_delete_range"));
    CHECK(key_of(ops[0]) == "/chip/prod/jobs/g/a/50");
    CHECK(key_of(ops[1]) == "/chip/prod/jobs/g/a/100");
    CHECK(ops[1]["request_put"]["lease"] == "7");
    // The view: the other host's member; ours arrive through the watch.
    REQUIRE(w.s.view().size() == 1);
    CHECK(w.s.view().begin()->second.node == "b");
    CHECK(w.s.nodes_seen() == std::set<std::string>{"a", "b"});
}

TEST_CASE("session: writes are serialized, queued ones go in the next transaction") {
    World w;
    w.connect();
    w.s.joined("jobs", "g", 1, "/w", w.now);
    Call first = w.pop("/v3/kv/txn");
    w.s.left("jobs", "g", 1, w.now);
    w.s.joined("jobs", "h", 2, "/w", w.now);
    CHECK_FALSE(w.has("/v3/kv/txn"));
    w.answer(first, R"({"header":{},"succeeded":true})");
    auto ops = txn_ops(w.pop("/v3/kv/txn"));
    REQUIRE(ops.size() == 2);
    CHECK(ops[0].contains("request_delete_range"));
    CHECK(key_of(ops[1]) == "/chip/prod/jobs/h/a/2");
}

TEST_CASE("session: the watch updates the view; garbage is ignored with a rate-limited warning") {
    World w;
    Call watch = w.connect();
    auto gen = w.s.view_generation();
    std::string line = watch_line({{true, "/chip/prod/jobs/g/b/7", member_value("b", 7, "/p"), 9},
                                   {true, "/chip/prod/jobs/g/b/x", "{}", 9},
                                   {true, "/chip/prod/jobs/g/c/8", "not json", 9}});
    // In two chunks, cut mid-line.
    w.s.on_stream(watch.id, line.substr(0, 20), w.now);
    CHECK(w.s.view().empty());
    w.s.on_stream(watch.id, line.substr(20), w.now);
    REQUIRE(w.s.view().size() == 1);
    CHECK(w.s.view().begin()->second.pid == 7);
    CHECK(w.s.view_generation() != gen);
    auto warnings = w.s.take_warnings();
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].find("/chip/prod/jobs/g/b/x") != std::string::npos);
    w.now += 11s;
    w.s.on_stream(watch.id, watch_line({{true, "/chip/prod/x", "1", 9}}), w.now);
    warnings = w.s.take_warnings();
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].find("and 1 more") != std::string::npos);
    w.s.on_stream(watch.id, watch_line({{false, "/chip/prod/jobs/g/b/7", "", 0}}), w.now);
    CHECK(w.s.view().empty());
    CHECK(w.s.state() == State::Connected);
}

TEST_CASE("session: keepalive every lease_ttl/3; a lost lease resyncs") {
    World w;
    w.connect();
    CHECK(w.s.next_deadline() == w.now + 1s);
    w.now += 1s;
    w.s.on_time(w.now);
    Call ka = w.pop("/v3/lease/keepalive");
    CHECK(json::parse(ka.body)["ID"] == "7");
    w.answer(ka, R"({"result":{"ID":"7","TTL":"3"}})");
    CHECK(w.s.state() == State::Connected);
    w.now += 1s;
    w.s.on_time(w.now);
    w.answer(w.pop("/v3/lease/keepalive"), R"({"result":{"ID":"7"}})");
    CHECK(w.s.state() == State::Connecting);
    auto cancels = w.s.take_cancels();
    CHECK(cancels.size() == 1);  // the watch
}

TEST_CASE("session: etcd down warns once, backs off over the endpoints, resyncs on return") {
    World w;
    w.s.joined("jobs", "g", 1, "/w", w.now);
    w.s.start(w.now);
    Call grant = w.pop("/v3/lease/grant");
    CHECK(grant.url == "http://e1:2379/v3/lease/grant");
    w.failed(grant, "Couldn't connect to server");
    CHECK(w.s.take_warnings().size() == 1);
    CHECK(w.s.next_deadline() == w.now + 100ms);
    w.now += 100ms;
    w.s.on_time(w.now);
    grant = w.pop("/v3/lease/grant");
    CHECK(grant.url == "http://e2:2379/v3/lease/grant");
    w.failed(grant, "Couldn't connect to server");
    CHECK(w.s.take_warnings().empty());
    CHECK(w.s.next_deadline() == w.now + 200ms);
    for (int i = 0; i < 10; ++i) {
        w.now = *w.s.next_deadline();
        w.s.on_time(w.now);
        w.failed(w.pop("/v3/lease/grant"), "down");
    }
    CHECK(*w.s.next_deadline() - w.now == 5s);
    w.now = *w.s.next_deadline();
    w.s.on_time(w.now);
    w.answer(w.pop("/v3/lease/grant"), R"({"ID":"8","TTL":"3"})");
    w.answer(w.pop("/v3/kv/range"), range_answer(3, {}));
    CHECK(w.s.state() == State::Connected);
    auto warnings = w.s.take_warnings();
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].find("reached again") != std::string::npos);
    auto ops = txn_ops(w.pop("/v3/kv/txn"));
    REQUIRE(ops.size() == 1);
    CHECK(ops[0]["request_put"]["lease"] == "8");
}

TEST_CASE("session: a watch that ends or sends garbage resyncs") {
    World w;
    Call watch = w.connect();
    w.s.on_stream(watch.id, "<html>oops</html>\n", w.now);
    CHECK(w.s.state() == State::Connecting);
    World v;
    watch = v.connect();
    v.failed(watch, "connection reset");
    CHECK(v.s.state() == State::Connecting);
    CHECK(v.s.last_error().find("connection reset") != std::string::npos);
}

TEST_CASE("session: close revokes the lease") {
    World w;
    w.connect();
    w.s.close(w.now);
    CHECK(w.s.state() == State::Closing);
    Call revoke = w.pop("/v3/lease/revoke");
    CHECK(json::parse(revoke.body)["ID"] == "7");
    w.answer(revoke, "{}");
    CHECK(w.s.closed());
    World v;
    v.s.start(v.now);
    v.s.close(v.now);
    CHECK(v.s.closed());  // nothing to revoke
}

TEST_CASE("session: a cluster-wide signal asks every node seen and collects the replies") {
    World w;
    Call watch =
        w.connect(range_answer(5, {{"/chip/prod/jobs/g/b/200", member_value("b", 200, "/x"), 9}}));
    CHECK_FALSE(w.has("/v3/kv/txn"));  // nothing of ours to write
    auto ticket = w.s.send_signal("jobs", "g", 15, 2s, w.now);
    w.answer(w.pop("/v3/lease/grant"), R"({"ID":"50","TTL":"4"})");
    auto ops = txn_ops(w.pop("/v3/kv/txn"));
    REQUIRE(ops.size() == 2);
    CHECK(key_of(ops[0]) == "/chip/prod/@signal/a/7-1");
    CHECK(key_of(ops[1]) == "/chip/prod/@signal/b/7-1");
    CHECK(ops[0]["request_put"]["lease"] == "50");
    // Our own request comes back through the watch: carried out here.
    SignalRequest mine{"a", "7-1", "a", "jobs", "g", 15, 50};
    w.s.on_stream(watch.id,
                  watch_line({{true, signal_key("prod", "a", "7-1"), signal_value(mine), 50}}),
                  w.now);
    auto todo = w.s.take_signals();
    REQUIRE(todo.size() == 1);
    w.s.signalled(todo[0], {100}, w.now);
    auto reply_ops = txn_ops(w.pop("/v3/kv/txn"));
    REQUIRE(reply_ops.size() == 2);
    CHECK(key_of(reply_ops[0]) == "/chip/prod/@reply/a/7-1/a");
    CHECK(reply_ops[0]["request_put"]["lease"] == "50");
    CHECK(key_of(reply_ops[1]) == "/chip/prod/@signal/a/7-1");
    w.s.on_stream(
        watch.id,
        watch_line({{true, reply_key("prod", "a", "7-1", "a"), reply_value("a", {100}), 50}}),
        w.now);
    CHECK(w.s.take_outcomes().empty());  // b has not answered yet
    w.now += 2s;
    w.s.on_time(w.now);
    auto outcomes = w.s.take_outcomes();
    REQUIRE(outcomes.size() == 1);
    CHECK(outcomes[0].ticket == ticket);
    CHECK(outcomes[0].signalled.at("a") == std::vector<pid_t>{100});
    CHECK(outcomes[0].silent == std::vector<std::string>{"b"});
    CHECK(w.has("/v3/lease/revoke"));
}

TEST_CASE("session: a signal while disconnected fails at once") {
    World w;
    w.s.start(w.now);
    w.s.send_signal("jobs", "g", 15, 2s, w.now);
    auto outcomes = w.s.take_outcomes();
    REQUIRE(outcomes.size() == 1);
    CHECK(outcomes[0].error.find("not connected") != std::string::npos);
}

TEST_CASE("session: another host writing as this node is warned about, at most every 10 s") {
    World w;
    Call watch = w.connect();
    // Node "a" is this session's; lease 7 is its own, lease 99 someone else's.
    w.s.on_stream(watch.id,
                  watch_line({{true, "/chip/prod/jobs/g/a/7", member_value("a", 7, "/p"), 7}}),
                  w.now);
    CHECK(w.s.take_warnings().empty());
    w.s.on_stream(watch.id,
                  watch_line({{true, "/chip/prod/jobs/g/a/8", member_value("a", 8, "/q"), 99}}),
                  w.now);
    auto warnings = w.s.take_warnings();
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].find("another host writes as node \"a\"") != std::string::npos);
    w.s.on_stream(watch.id,
                  watch_line({{true, "/chip/prod/jobs/g/a/9", member_value("a", 9, "/q"), 99}}),
                  w.now);
    CHECK(w.s.take_warnings().empty());
    w.now += 11s;
    w.s.on_stream(watch.id,
                  watch_line({{true, "/chip/prod/jobs/g/a/10", member_value("a", 10, "/q"), 99}}),
                  w.now);
    CHECK(w.s.take_warnings().size() == 1);
}
