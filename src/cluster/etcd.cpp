#include "cluster/etcd.hpp"

#include <charconv>
#include <nlohmann/json.hpp>

#include "common/names.hpp"

namespace chip::cluster {

using Json = nlohmann::json;

namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int sextet(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

// The parts of KEY after PREFIX split at '/'; nullopt when KEY is not under it.
std::optional<std::vector<std::string_view>> parts_after(std::string_view prefix,
                                                         std::string_view key) {
    if (!key.starts_with(prefix)) return std::nullopt;
    key.remove_prefix(prefix.size());
    std::vector<std::string_view> parts;
    for (;;) {
        auto slash = key.find('/');
        parts.push_back(key.substr(0, slash));
        if (slash == std::string_view::npos) break;
        key.remove_prefix(slash + 1);
        if (parts.size() > 8) return std::nullopt;
    }
    return parts;
}

// A positive pid written in canonical decimal.
std::optional<pid_t> parse_pid(std::string_view s) {
    if (s.empty() || s.size() > 10 || s[0] == '0') return std::nullopt;
    long long v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || v <= 0 || v > 0x7fffffff)
        return std::nullopt;
    return static_cast<pid_t>(v);
}

std::optional<Json> parse_json(std::string_view text) {
    Json j = Json::parse(text.begin(), text.end(), nullptr, false);
    if (j.is_discarded()) return std::nullopt;
    return j;
}

// The gateway writes int64 as strings ("12"); accept numbers too.
std::optional<std::int64_t> int64_of(const Json &obj, const char *key) {
    auto it = obj.find(key);
    if (it == obj.end()) return std::nullopt;
    if (it->is_number_integer()) return it->get<std::int64_t>();
    if (!it->is_string()) return std::nullopt;
    const std::string &s = it->get_ref<const std::string &>();
    std::int64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
    return v;
}

std::string b64_field(const Json &obj, const char *key, bool *ok) {
    auto it = obj.find(key);
    if (it == obj.end()) return {};  // proto3 leaves empty fields out
    if (!it->is_string()) {
        *ok = false;
        return {};
    }
    auto d = base64_decode(it->get_ref<const std::string &>());
    if (!d) *ok = false;
    return d ? *d : std::string();
}

std::optional<KeyValue> kv_of(const Json &j) {
    if (!j.is_object()) return std::nullopt;
    bool ok = true;
    KeyValue kv;
    kv.key = b64_field(j, "key", &ok);
    kv.value = b64_field(j, "value", &ok);
    kv.lease = int64_of(j, "lease").value_or(0);
    kv.mod_revision = int64_of(j, "mod_revision").value_or(0);
    if (!ok || kv.key.empty()) return std::nullopt;
    return kv;
}

std::int64_t header_revision(const Json &j) {
    auto h = j.find("header");
    if (h == j.end() || !h->is_object()) return 0;
    return int64_of(*h, "revision").value_or(0);
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 2 < bytes.size(); i += 3) {
        std::uint32_t n = (std::uint32_t(std::uint8_t(bytes[i])) << 16) |
                          (std::uint32_t(std::uint8_t(bytes[i + 1])) << 8) |
                          std::uint8_t(bytes[i + 2]);
        out += kAlphabet[n >> 18];
        out += kAlphabet[(n >> 12) & 63];
        out += kAlphabet[(n >> 6) & 63];
        out += kAlphabet[n & 63];
    }
    if (std::size_t rest = bytes.size() - i; rest > 0) {
        std::uint32_t n = std::uint32_t(std::uint8_t(bytes[i])) << 16;
        if (rest == 2) n |= std::uint32_t(std::uint8_t(bytes[i + 1])) << 8;
        out += kAlphabet[n >> 18];
        out += kAlphabet[(n >> 12) & 63];
        out += rest == 2 ? kAlphabet[(n >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
    if (text.size() % 4 != 0) return std::nullopt;
    std::string out;
    out.reserve(text.size() / 4 * 3);
    for (std::size_t i = 0; i < text.size(); i += 4) {
        bool last = i + 4 == text.size();
        int a = sextet(text[i]), b = sextet(text[i + 1]);
        int c = text[i + 2] == '=' && last ? -2 : sextet(text[i + 2]);
        int d = text[i + 3] == '=' && last ? -2 : sextet(text[i + 3]);
        if (a < 0 || b < 0 || c == -1 || d == -1 || (c == -2 && d != -2)) return std::nullopt;
        std::uint32_t n = (std::uint32_t(a) << 18) | (std::uint32_t(b) << 12) |
                          (std::uint32_t(c < 0 ? 0 : c) << 6) | std::uint32_t(d < 0 ? 0 : d);
        out += char(n >> 16);
        if (c >= 0) out += char((n >> 8) & 0xff);
        if (d >= 0) out += char(n & 0xff);
        // Canonical: the bits padding drops are zero.
        if ((c < 0 && (n & 0xffff) != 0) || (c >= 0 && d < 0 && (n & 0xff) != 0))
            return std::nullopt;
    }
    return out;
}

std::string prefix_end(std::string_view prefix) {
    std::string end(prefix);
    while (!end.empty()) {
        if (static_cast<unsigned char>(end.back()) < 0xff) {
            end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
            return end;
        }
        end.pop_back();
    }
    return std::string(1, '\0');  // every key
}

std::string cluster_prefix(std::string_view name) {
    return "/chip/" + std::string(name) + "/";
}

std::string member_key(std::string_view name, const MemberKey &m) {
    return cluster_prefix(name) + m.registry + "/" + m.group + "/" + m.node + "/" +
           std::to_string(m.pid);
}

std::string member_value(std::string_view node, pid_t pid, std::string_view path) {
    return Json{{"node", node}, {"pid", pid}, {"path", path}}.dump();
}

std::optional<MemberKey> parse_member_key(std::string_view name, std::string_view key) {
    auto parts = parts_after(cluster_prefix(name), key);
    if (!parts || parts->size() != 4) return std::nullopt;
    const auto &p = *parts;
    if (!valid_group_name(p[0]) || !valid_group_name(p[1]) || !valid_group_name(p[2]))
        return std::nullopt;
    auto pid = parse_pid(p[3]);
    if (!pid) return std::nullopt;
    return MemberKey{std::string(p[0]), std::string(p[1]), std::string(p[2]), *pid};
}

bool valid_member_value(std::string_view value, const MemberKey &m) {
    if (value.size() > 8192) return false;
    auto j = parse_json(value);
    if (!j || !j->is_object()) return false;
    auto node = j->find("node"), pid = j->find("pid"), path = j->find("path");
    return node != j->end() && node->is_string() && *node == m.node && pid != j->end() &&
           pid->is_number_integer() && pid->get<std::int64_t>() == m.pid &&
           (path == j->end() || path->is_string());
}

std::string signal_key(std::string_view name, std::string_view node, std::string_view id) {
    return cluster_prefix(name) + "@signal/" + std::string(node) + "/" + std::string(id);
}

std::string signal_value(const SignalRequest &r) {
    return Json{{"from", r.from},
                {"registry", r.registry},
                {"group", r.group},
                {"signal", r.signal},
                {"lease", std::to_string(r.lease)}}
        .dump();
}

std::optional<SignalRequest> parse_signal(std::string_view name, std::string_view key,
                                          std::string_view value) {
    auto parts = parts_after(cluster_prefix(name), key);
    if (!parts || parts->size() != 3 || (*parts)[0] != "@signal") return std::nullopt;
    SignalRequest r;
    r.node = std::string((*parts)[1]);
    r.id = std::string((*parts)[2]);
    if (!valid_group_name(r.node) || !valid_group_name(r.id) || value.size() > 8192)
        return std::nullopt;
    auto j = parse_json(value);
    if (!j || !j->is_object()) return std::nullopt;
    auto from = j->find("from"), reg = j->find("registry"), group = j->find("group"),
         sig = j->find("signal");
    if (from == j->end() || !from->is_string() || reg == j->end() || !reg->is_string() ||
        group == j->end() || !group->is_string() || sig == j->end() || !sig->is_number_integer())
        return std::nullopt;
    r.from = from->get<std::string>();
    r.registry = reg->get<std::string>();
    r.group = group->get<std::string>();
    std::int64_t s = sig->get<std::int64_t>();
    if (!valid_group_name(r.from) || !valid_group_name(r.registry) || !valid_group_name(r.group) ||
        s < 0 || s > 64)
        return std::nullopt;
    r.signal = static_cast<int>(s);
    r.lease = int64_of(*j, "lease").value_or(0);
    return r;
}

std::string reply_key(std::string_view name, std::string_view from, std::string_view id,
                      std::string_view node) {
    return cluster_prefix(name) + "@reply/" + std::string(from) + "/" + std::string(id) + "/" +
           std::string(node);
}

std::string reply_value(std::string_view node, const std::vector<pid_t> &signalled) {
    return Json{{"node", node}, {"signalled", signalled}}.dump();
}

std::optional<SignalReply> parse_reply(std::string_view name, std::string_view key,
                                       std::string_view value) {
    auto parts = parts_after(cluster_prefix(name), key);
    if (!parts || parts->size() != 4 || (*parts)[0] != "@reply") return std::nullopt;
    SignalReply r;
    r.from = std::string((*parts)[1]);
    r.id = std::string((*parts)[2]);
    r.node = std::string((*parts)[3]);
    if (!valid_group_name(r.from) || !valid_group_name(r.id) || !valid_group_name(r.node) ||
        value.size() > (1u << 20))
        return std::nullopt;
    auto j = parse_json(value);
    if (!j || !j->is_object()) return std::nullopt;
    auto pids = j->find("signalled");
    if (pids == j->end() || !pids->is_array()) return std::nullopt;
    for (const auto &p : *pids) {
        if (!p.is_number_integer() || p.get<std::int64_t>() <= 0 ||
            p.get<std::int64_t>() > 0x7fffffff)
            return std::nullopt;
        r.signalled.push_back(static_cast<pid_t>(p.get<std::int64_t>()));
    }
    return r;
}

std::string lease_grant_body(unsigned ttl_seconds) {
    return Json{{"TTL", std::to_string(ttl_seconds)}}.dump();
}

std::string lease_keepalive_body(std::int64_t lease) {
    return Json{{"ID", std::to_string(lease)}}.dump();
}

std::string lease_revoke_body(std::int64_t lease) {
    return Json{{"ID", std::to_string(lease)}}.dump();
}

std::string range_prefix_body(std::string_view prefix) {
    return Json{{"key", base64_encode(prefix)}, {"range_end", base64_encode(prefix_end(prefix))}}
        .dump();
}

std::string txn_body(const std::vector<Write> &writes) {
    Json ops = Json::array();
    for (const auto &w : writes) {
        if (w.put) {
            Json put{{"key", base64_encode(w.key)}, {"value", base64_encode(w.value)}};
            if (w.lease) put["lease"] = std::to_string(w.lease);
            ops.push_back({{"request_put", std::move(put)}});
        } else {
            ops.push_back({{"request_delete_range", {{"key", base64_encode(w.key)}}}});
        }
    }
    return Json{{"success", std::move(ops)}}.dump();
}

std::string watch_body(std::string_view prefix, std::int64_t start) {
    return Json{{"create_request",
                 {{"key", base64_encode(prefix)},
                  {"range_end", base64_encode(prefix_end(prefix))},
                  {"start_revision", std::to_string(start)}}}}
        .dump();
}

std::optional<std::string> error_of(std::string_view body) {
    auto j = parse_json(body);
    if (!j || !j->is_object()) return std::nullopt;
    auto e = j->find("error");
    if (e == j->end()) e = j->find("message");
    if (e == j->end() || !e->is_string()) return std::nullopt;
    return e->get<std::string>();
}

std::optional<std::int64_t> parse_grant(std::string_view body) {
    auto j = parse_json(body);
    if (!j || !j->is_object()) return std::nullopt;
    auto id = int64_of(*j, "ID");
    if (!id || *id == 0) return std::nullopt;
    return id;
}

std::optional<std::int64_t> parse_keepalive(std::string_view body) {
    auto j = parse_json(body);
    if (!j || !j->is_object()) return std::nullopt;
    auto r = j->find("result");
    if (r == j->end() || !r->is_object()) return std::nullopt;
    return int64_of(*r, "TTL").value_or(0);
}

std::optional<Range> parse_range(std::string_view body) {
    auto j = parse_json(body);
    if (!j || !j->is_object() || !j->contains("header")) return std::nullopt;
    Range r;
    r.revision = header_revision(*j);
    if (auto kvs = j->find("kvs"); kvs != j->end()) {
        if (!kvs->is_array()) return std::nullopt;
        for (const auto &item : *kvs) {
            if (auto kv = kv_of(item))
                r.kvs.push_back(std::move(*kv));
            else
                ++r.undecodable;
        }
    }
    return r;
}

std::optional<WatchMessage> parse_watch_message(std::string_view line) {
    auto j = parse_json(line);
    if (!j || !j->is_object()) return std::nullopt;
    auto res = j->find("result");
    if (res == j->end() || !res->is_object()) return std::nullopt;
    WatchMessage m;
    const Json &r = *res;
    m.created = r.value("created", false);
    m.canceled = r.value("canceled", false);
    m.compact_revision = int64_of(r, "compact_revision").value_or(0);
    if (m.compact_revision) m.canceled = true;
    m.revision = header_revision(r);
    if (auto events = r.find("events"); events != r.end()) {
        if (!events->is_array()) return std::nullopt;
        for (const auto &e : *events) {
            auto kv = e.is_object() ? e.find("kv") : e.end();
            std::optional<KeyValue> parsed;
            if (kv != e.end()) parsed = kv_of(*kv);
            if (!parsed) {
                ++m.undecodable;
                continue;
            }
            WatchEvent ev;
            auto type = e.find("type");
            ev.put = type == e.end() || (type->is_string() && *type == "PUT") ||
                     (type->is_number_integer() && *type == 0);
            ev.kv = std::move(*parsed);
            m.events.push_back(std::move(ev));
        }
    }
    return m;
}

bool LineBuffer::append(std::string_view chunk) {
    if (start_ > 0 && start_ >= buf_.size() / 2) {
        buf_.erase(0, start_);
        start_ = 0;
    }
    buf_.append(chunk);
    auto last = buf_.rfind('\n');
    std::size_t open = last == std::string::npos || last < start_ ? start_ : last + 1;
    // Only the unfinished tail is bounded: complete lines are taken by next().
    return buf_.size() - open <= limit_;
}

std::optional<std::string> LineBuffer::next() {
    for (;;) {
        auto nl = buf_.find('\n', start_);
        if (nl == std::string::npos) return std::nullopt;
        std::string line = buf_.substr(start_, nl - start_);
        start_ = nl + 1;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) continue;
        return line;
    }
}

}  // namespace chip::cluster
