// chipd's event log, as text: a core::Event becomes the line chipd writes on
// its stderr (README.md, "chipd"), plain text or a JSON object, stamped with
// the wall-clock time or, under the journal, prefixed with a syslog priority.
//
// Pure: the time comes in as a value and the line goes out as a string. It
// writes nothing, reads no clock and acts on nothing (closing notify sockets,
// counting restarts for systemd are their own modules' business).
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include <vector>

#include "core/reload.hpp"
#include "core/tree.hpp"

namespace chip::daemon {

using WallTime = std::chrono::system_clock::time_point;

struct LogStyle {
    bool json = false;     // --log-format json
    bool journal = false;  // JOURNAL_STREAM: "<N>" priorities, no timestamps
};

// The journal's syslog priority of E: 3 give-up and failed starts, 4 abnormal
// exits and kills, 5 restarts, 6 the rest.
int priority_of(const core::Event &e);

// T in UTC to the millisecond: "2024-05-01T12:00:00.123Z".
std::string timestamp(WallTime t);

// A duration as seconds for people: "5", "0.25", "100000".
std::string seconds_text(core::Duration d);

// The log line of E at WHEN, ending in '\n'.
std::string format_event(const core::Event &e, WallTime when, LogStyle style);

// The lines of a reload of SPEC that makes CHANGES: "reload SPEC (N changes)"
// and one "reload: CHANGE PATH" each (JSON: one {"event": "reload", "spec",
// "changes": [{"path", "change"}, ...]} object).
std::string format_reload(std::string_view spec, const std::vector<core::Change> &changes,
                          WallTime when, LogStyle style);
// The line of its end: "reloaded", or "reload failed: WHY" (priority 3).
std::string format_reload_end(const Result<void> &result, WallTime when, LogStyle style);

// The event stream's object of a registry change at WHEN (README.md, "chipctl
// events"), one JSON line ending in '\n': {"event": "join" | "leave",
// "registry", "group", "pid", "path" (when PATH is not empty), "time"}.
std::string format_membership(bool joined, std::string_view registry, std::string_view group,
                              long pid, std::string_view path, WallTime when);

// A warning line at WHEN, ending in '\n': "... chipd: warning: MSG", or
// {"event": "warning", "message": MSG} (priority 4 under the journal).
std::string format_warning(std::string_view msg, WallTime when, LogStyle style);
// A reexec (README.md, "Upgrading chipd in place"): the chipd about to execute
// PROGRAM with hand-off VERSION ("reexec: executing PROGRAM (hand-off version
// N)"), and the new one that took over WORKERS running workers ("reexec: chipd
// V took over N workers").
std::string format_reexec_begin(std::string_view program, std::uint32_t version, WallTime when,
                                LogStyle style);
std::string format_reexec_done(std::string_view chip_version, std::size_t workers,
                               std::uint32_t handoff_version, WallTime when, LogStyle style);

}  // namespace chip::daemon
