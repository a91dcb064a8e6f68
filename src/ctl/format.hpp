// chipctl's text output: the status table, uptimes, last exits and the groups
// list, as pure functions of chipd's JSON (README.md, "Protocol") so they are
// unit-tested without a chipd. They never throw on missing or mistyped fields:
// what cannot be read is shown as "-". No I/O here.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace chip::ctl {

// A duration as chipctl shows it, two units at most: "5s", "3m12s", "2h04m", "3d04h".
std::string format_uptime(std::int64_t seconds);
// The "uptime_s" field: "-" when null or not a number.
std::string format_uptime(const nlohmann::json &uptime_s);
// CPU seconds as "0.12s", or "3m02s" from a minute on; "-" for null.
std::string format_cpu(const nlohmann::json &cpu_s);
// A byte count as "512B", "12.3M"; "-" for null.
std::string format_bytes(const nlohmann::json &bytes);
// An argv as one line (arguments with spaces or quotes in single quotes);
// with a LIMIT, shortened: the program without its folder, the line cut to
// LIMIT characters with "..." (0: whole).
std::string format_command(const nlohmann::json &command, std::size_t limit);

// The "last_exit" field: "exit 3", "signal TERM" (a number becomes its name), "-" when null.
std::string format_last_exit(const nlohmann::json &last_exit);

// The depth of a node path: 0 for "/", 1 for "db", 2 for "sessions/session.3".
std::size_t path_depth(std::string_view path);

// The status table of NODES (the "nodes" array of a status response): a header
// and one line per node, columns aligned with two spaces between them and no
// trailing blanks. The shallowest nodes show their full path; the others their
// last name, indented by two spaces per level below them.
std::string format_status_table(const nlohmann::json &nodes);

// One "GROUP  COUNT" line per group, sorted by name, counts aligned in a column.
std::string format_groups(std::vector<std::pair<std::string, std::uint32_t>> groups);

// An object of the event stream (README.md, "chipctl events") as the line
// chipd's text log writes for it, ending in '\n': "TIME chipd: start PATH pid
// N", "TIME chipd: exit PATH pid N status 1", "TIME chipd: join REG/GROUP pid
// N", "TIME chipd: reload SPEC (2 changes)" and one "reload: CHANGE PATH" line
// per change... A restart shows its count only: "(restart 3)" (the stream does
// not carry the supervisor's limits). Missing fields are left out.
std::string format_event_line(const nlohmann::json &event);

}  // namespace chip::ctl
