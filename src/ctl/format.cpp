#include "ctl/format.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>

#include "common/names.hpp"

namespace chip::ctl {

namespace {

using nlohmann::json;

// "%d%c%02d%c" without the locale and printf width games of iostreams.
std::string two_units(std::int64_t big, char big_unit, std::int64_t small, char small_unit) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "%lld%c%02lld%c", static_cast<long long>(big), big_unit,
                  static_cast<long long>(small), small_unit);
    return buf;
}

std::string field_string(const json &node, const char *key) {
    auto it = node.find(key);
    if (it == node.end() || !it->is_string()) return "-";
    return it->get<std::string>();
}

std::string field_integer(const json &node, const char *key) {
    auto it = node.find(key);
    if (it == node.end() || !it->is_number()) return "-";
    if (it->is_number_float()) return std::to_string(static_cast<std::int64_t>(it->get<double>()));
    return it->dump();
}

// The last name of PATH ("session.3" for "sessions/session.3"; "/" for the root).
std::string_view last_name(std::string_view path) {
    if (path == "/") return path;
    auto slash = path.rfind('/');
    return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

}  // namespace

std::string format_uptime(std::int64_t s) {
    if (s < 0) s = 0;
    if (s < 60) return std::to_string(s) + "s";
    if (s < 3600) return two_units(s / 60, 'm', s % 60, 's');
    if (s < 86400) return two_units(s / 3600, 'h', s / 60 % 60, 'm');
    return two_units(s / 86400, 'd', s / 3600 % 24, 'h');
}

std::string format_uptime(const json &uptime_s) {
    if (!uptime_s.is_number()) return "-";
    double v = uptime_s.get<double>();
    if (!std::isfinite(v)) return "-";
    return format_uptime(static_cast<std::int64_t>(std::floor(v)));
}

std::string format_last_exit(const json &last_exit) {
    if (!last_exit.is_object()) return "-";
    if (auto it = last_exit.find("code"); it != last_exit.end() && it->is_number_integer())
        return "exit " + it->dump();
    if (auto it = last_exit.find("signal"); it != last_exit.end()) {
        if (it->is_string()) return "signal " + it->get<std::string>();
        if (it->is_number_integer()) return "signal " + signal_name(it->get<int>());
    }
    return "-";
}

std::size_t path_depth(std::string_view path) {
    if (path.empty() || path == "/") return 0;
    return static_cast<std::size_t>(std::count(path.begin(), path.end(), '/')) + 1;
}

std::string format_cpu(const json &cpu_s) {
    if (!cpu_s.is_number()) return "-";
    double s = cpu_s.get<double>();
    char buf[32];
    if (s < 60)
        std::snprintf(buf, sizeof buf, "%.2fs", s);
    else
        return format_uptime(static_cast<std::int64_t>(s));
    return buf;
}

std::string format_bytes(const json &bytes) {
    if (!bytes.is_number()) return "-";
    double b = bytes.get<double>();
    const char *units[] = {"B", "K", "M", "G", "T"};
    int u = 0;
    while (b >= 1024 && u < 4) {
        b /= 1024;
        ++u;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, u == 0 ? "%.0f%s" : "%.1f%s", b, units[u]);
    return buf;
}

std::string format_command(const json &command, std::size_t limit) {
    if (!command.is_array()) return "-";
    std::string out;
    for (const auto &a : command) {
        if (!a.is_string()) continue;
        std::string s = a.get<std::string>();
        // Shortened: the program by its name, not its folder.
        if (limit && out.empty() && s.find('/') != std::string::npos)
            s = s.substr(s.rfind('/') + 1);
        if (!out.empty()) out += ' ';
        bool plain = !s.empty() && s.find_first_of(" \t'\"\\$") == std::string::npos;
        out += plain ? s : "'" + s + "'";
    }
    if (limit && out.size() > limit) out = out.substr(0, limit - 3) + "...";
    return out;
}

std::string format_status_table(const json &nodes) {
    const json empty = json::array();
    const json &list = nodes.is_array() ? nodes : empty;
    // The usage columns when chipd gave them (status with "usage").
    bool usage = false;
    for (const auto &node : list) usage = usage || (node.is_object() && node.contains("command"));
    const std::size_t kColumns = usage ? 10 : 6;
    using Row = std::vector<std::string>;
    std::vector<Row> rows{{"PATH", "STATE", "PID", "UPTIME", "RESTARTS", "LAST EXIT"}};
    if (usage) rows[0].insert(rows[0].end(), {"CPU", "RSS", "STARTED", "COMMAND"});
    std::size_t base = SIZE_MAX;
    for (const auto &node : list)
        if (node.is_object()) base = std::min(base, path_depth(field_string(node, "path")));

    std::string reasons;  // why failed nodes are failed, under the table
    for (const auto &node : list) {
        if (!node.is_object()) continue;
        std::string path = field_string(node, "path");
        if (auto r = node.find("reason"); r != node.end() && r->is_string())
            reasons += path + ": failed: " + r->get<std::string>() + "\n";
        std::size_t depth = path_depth(path);
        std::string shown =
            depth == base ? path
                          : std::string(2 * (depth - base), ' ') + std::string(last_name(path));
        auto get = [&](const char *key) { return node.contains(key) ? node.at(key) : json(); };
        rows.push_back({shown, field_string(node, "state"), field_integer(node, "pid"),
                        format_uptime(get("uptime_s")), field_integer(node, "restarts"),
                        format_last_exit(get("last_exit"))});
        if (usage) {
            // "2024-05-01T12:00:00.123Z" -> "12:00:00Z" (UTC, as chipd's log)
            std::string started = field_string(node, "started_at");
            started = started.size() >= 20 ? started.substr(11, 8) + "Z" : "-";
            rows.back().insert(
                rows.back().end(),
                {format_cpu(get("cpu_s")), format_bytes(get("rss_bytes")), started,
                 node.contains("command") ? format_command(get("command"), 40) : std::string("-")});
        }
    }

    std::vector<std::size_t> width(kColumns);
    for (const auto &row : rows)
        for (std::size_t c = 0; c < kColumns; ++c) width[c] = std::max(width[c], row[c].size());

    std::string out;
    for (const auto &row : rows) {
        std::string line;
        for (std::size_t c = 0; c < kColumns; ++c) {
            line += row[c];
            if (c + 1 < kColumns) line.append(width[c] - row[c].size() + 2, ' ');
        }
        line.erase(line.find_last_not_of(' ') + 1);
        out += line;
        out += '\n';
    }
    return out + reasons;
}

std::string format_groups(std::vector<std::pair<std::string, std::uint32_t>> groups) {
    std::sort(groups.begin(), groups.end());
    std::size_t width = 0;
    for (const auto &g : groups) width = std::max(width, g.first.size());
    std::string out;
    for (const auto &[name, count] : groups) {
        out += name;
        out.append(width - name.size() + 2, ' ');
        out += std::to_string(count);
        out += '\n';
    }
    return out;
}

namespace {

std::string str_field(const nlohmann::json &j, const char *key) {
    auto it = j.find(key);
    if (it == j.end()) return {};
    if (it->is_string()) return it->get<std::string>();
    if (it->is_number()) return it->dump();
    return {};
}

}  // namespace

std::string format_event_line(const nlohmann::json &event) {
    if (!event.is_object()) return {};
    std::string time = str_field(event, "time");
    auto line = [&](const std::string &text) {
        return (time.empty() ? "" : time + " ") + "chipd: " + text + "\n";
    };
    std::string kind = str_field(event, "event");
    std::string pid = str_field(event, "pid");
    std::string message = str_field(event, "message");
    if (kind == "join" || kind == "leave") {
        std::string text = kind + " " + str_field(event, "registry") + "/" +
                           str_field(event, "group") + (pid.empty() ? "" : " pid " + pid);
        if (auto path = str_field(event, "path"); !path.empty()) text += " (" + path + ")";
        return line(text);
    }
    if (kind == "reload") {
        auto changes = event.find("changes");
        std::size_t n = changes != event.end() && changes->is_array() ? changes->size() : 0;
        std::string out = line("reload " + str_field(event, "spec") + " (" + std::to_string(n) +
                               (n == 1 ? " change)" : " changes)"));
        for (std::size_t i = 0; i < n; ++i)
            out += line("reload: " + str_field((*changes)[i], "change") + " " +
                        str_field((*changes)[i], "path"));
        return out;
    }
    if (kind == "reloaded") return line("reloaded");
    if (kind == "reexec")
        return line("reexec: executing " + str_field(event, "program") + " (hand-off version " +
                    str_field(event, "handoff_version") + ")");
    if (kind == "reload-failed") return line("reload failed: " + message);
    std::string text = kind + " " + str_field(event, "path");
    if (!pid.empty()) text += " pid " + pid;
    if (kind == "exit") {
        if (auto sig = str_field(event, "signal"); !sig.empty())
            text += " signal " + sig;
        else if (auto code = str_field(event, "code"); !code.empty())
            text += " status " + code;
    }
    if (kind == "restart")
        if (auto count = str_field(event, "count"); !count.empty())
            text += " (restart " + count + ")";
    if (!message.empty()) text += ": " + message;
    return line(text);
}

}  // namespace chip::ctl
