#include "daemon/events.hpp"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "common/names.hpp"

namespace chip::daemon {

using nlohmann::json;
using K = core::Event::Kind;

int priority_of(const core::Event &e) {
    switch (e.kind) {
        case K::StartFailed:
        case K::GiveUp:
        case K::Failed:
            return 3;
        case K::Kill:
            return 4;
        case K::Restart:
        case K::Backoff:
            return 5;
        case K::Exit:
            return e.status.signaled || e.status.value != 0 ? 4 : 6;
        default:
            return 6;
    }
}

std::string timestamp(WallTime t) {
    // The calendar of <chrono>: UTC with no time-zone database and no libc call.
    using namespace std::chrono;
    auto ms = floor<milliseconds>(t);
    auto day = floor<days>(ms);
    year_month_day ymd{day};
    hh_mm_ss<milliseconds> hms{ms - day};
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", int(ymd.year()),
                  unsigned(ymd.month()), unsigned(ymd.day()), int(hms.hours().count()),
                  int(hms.minutes().count()), int(hms.seconds().count()),
                  int(hms.subseconds().count()));
    return buf;
}

std::string seconds_text(core::Duration d) {
    // Exact to the nanosecond: whole seconds, then the fraction's significant digits.
    auto ns = d.count();
    std::string text = std::to_string(ns / 1000000000);
    if (auto frac = ns % 1000000000; frac > 0) {
        char digits[16];
        std::snprintf(digits, sizeof digits, ".%09lld", static_cast<long long>(frac));
        std::string f = digits;
        text += f.substr(0, f.find_last_not_of('0') + 1);
    }
    return text;
}

std::string format_event(const core::Event &e, WallTime when, LogStyle style) {
    // Events of chipd itself (a signal received) name no node: the root's path.
    std::string path = e.node ? e.node->path : "/";
    std::string prefix = style.journal ? "<" + std::to_string(priority_of(e)) + ">" : "";
    if (style.json) {
        json j{{"event", core::event_name(e.kind)}, {"path", path}};
        if (!style.journal) j["time"] = timestamp(when);
        if (e.pid) j["pid"] = e.pid;
        if (e.kind == K::Exit) {
            if (e.status.signaled)
                j["signal"] = signal_name(e.status.value);
            else
                j["code"] = e.status.value;
        }
        if (e.kind == K::Restart || e.kind == K::GiveUp) j["count"] = e.count;
        if (e.kind == K::Backoff) j["delay_s"] = e.delay.count() / 1e9;
        if (!e.message.empty()) j["message"] = e.message;
        // Messages carry outside bytes (paths, commands): never a throw for
        // bad UTF-8, a replacement character instead.
        return prefix + j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    }
    std::string text = std::string(core::event_name(e.kind)) + " " + path;
    if (e.pid) text += " pid " + std::to_string(e.pid);
    if (e.kind == K::Exit)
        text += e.status.signaled ? " signal " + signal_name(e.status.value)
                                  : " status " + std::to_string(e.status.value);
    // The limit the restart counts against: the supervisor's intensity.
    if (e.kind == K::Restart && e.node && e.node->parent && e.node->parent->sup) {
        const auto &sup = *e.node->parent->sup;
        text += " (restart " + std::to_string(e.count) + " of at most " +
                std::to_string(sup.max_restarts) + " within " + seconds_text(sup.period) + " s)";
    }
    if (e.kind == K::Backoff)
        text += " " + seconds_text(std::chrono::round<std::chrono::milliseconds>(e.delay)) + " s";
    if (!e.message.empty()) text += ": " + e.message;
    // The journal stamps lines itself.
    if (style.journal) return prefix + "chipd: " + text + "\n";
    return timestamp(when) + " chipd: " + text + "\n";
}

namespace {

// A line of text in both formats' manner: "TIME chipd: TEXT" or "<N>chipd: TEXT".
std::string text_line(std::string_view text, int priority, WallTime when, LogStyle style) {
    std::string body = "chipd: " + std::string(text) + "\n";
    return style.journal ? "<" + std::to_string(priority) + ">" + body
                         : timestamp(when) + " " + body;
}

std::string json_line(nlohmann::json j, int priority, WallTime when, LogStyle style) {
    if (!style.journal) j["time"] = timestamp(when);
    std::string body = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    return style.journal ? "<" + std::to_string(priority) + ">" + body : body;
}

}  // namespace

std::string format_warning(std::string_view msg, WallTime when, LogStyle style) {
    if (style.json) return json_line({{"event", "warning"}, {"message", msg}}, 4, when, style);
    std::string body = "chipd: warning: " + std::string(msg) + "\n";
    return style.journal ? "<4>" + body : timestamp(when) + " " + body;
}

std::string format_reexec_begin(std::string_view program, std::uint32_t version, WallTime when,
                                LogStyle style) {
    if (style.json)
        return json_line({{"event", "reexec"}, {"program", program}, {"handoff_version", version}},
                         5, when, style);
    return text_line("reexec: executing " + std::string(program) + " (hand-off version " +
                         std::to_string(version) + ")",
                     5, when, style);
}

std::string format_reexec_done(std::string_view chip_version, std::size_t workers,
                               std::uint32_t handoff_version, WallTime when, LogStyle style) {
    if (style.json)
        return json_line({{"event", "reexec"},
                          {"version", chip_version},
                          {"workers", workers},
                          {"handoff_version", handoff_version}},
                         5, when, style);
    return text_line("reexec: chipd " + std::string(chip_version) + " took over " +
                         std::to_string(workers) + (workers == 1 ? " worker" : " workers") +
                         " (hand-off version " + std::to_string(handoff_version) + ")",
                     5, when, style);
}

std::string format_reload(std::string_view spec, const std::vector<core::Change> &changes,
                          WallTime when, LogStyle style) {
    if (style.json) {
        nlohmann::json list = nlohmann::json::array();
        for (const auto &c : changes)
            list.push_back({{"path", c.path}, {"change", core::change_name(c.kind)}});
        return json_line({{"event", "reload"}, {"spec", spec}, {"changes", list}}, 5, when, style);
    }
    std::string out =
        text_line("reload " + std::string(spec) + " (" + std::to_string(changes.size()) +
                      (changes.size() == 1 ? " change)" : " changes)"),
                  5, when, style);
    for (const auto &c : changes)
        out += text_line("reload: " + std::string(core::change_name(c.kind)) + " " + c.path, 5,
                         when, style);
    return out;
}

std::string format_reload_end(const Result<void> &result, WallTime when, LogStyle style) {
    if (style.json) {
        nlohmann::json j{{"event", result ? "reloaded" : "reload-failed"}};
        if (!result) j["message"] = result.error().message;
        return json_line(j, result ? 5 : 3, when, style);
    }
    return text_line(result ? std::string("reloaded") : "reload failed: " + result.error().message,
                     result ? 5 : 3, when, style);
}

std::string format_membership(bool joined, std::string_view registry, std::string_view group,
                              long pid, std::string_view path, WallTime when) {
    nlohmann::json j{{"event", joined ? "join" : "leave"},
                     {"registry", registry},
                     {"group", group},
                     {"pid", pid}};
    if (!path.empty()) j["path"] = path;
    return json_line(std::move(j), 6, when, LogStyle{true, false});
}

}  // namespace chip::daemon
