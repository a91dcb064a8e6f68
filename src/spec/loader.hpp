// The spec loader: JSON text -> Spec (spec/spec.hpp), validated whole, with every default
// filled in and every relative path made absolute against the spec's folder.
//
// Invalid specs are refused whole: the loader collects every error it finds (it
// keeps checking siblings after one) and throws them together, each a full line
// "FILE: POINTER: expected X; got Y" (JSON Pointer, RFC 6901; the document is "/"),
// or "FILE:LINE:COL: syntax error: ..." for text that is not JSON at all.
// The grammar is the one README.md ("The spec", "chipd") promises. Comments
// (// and /* */) are allowed; a child {"include": GLOB} splices in the
// children of other files, whose errors name those files and their pointers.
//
// Users and groups are resolved here (the spec names them), and log folders
// must be writable: both through a Host, the machine by default. What may
// change before a worker starts (whether its program and cwd exist) is
// checked only when asked (Checks::Machine, `chipd --check`); chipd itself
// meets those as start failures.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "spec/host.hpp"
#include "spec/spec.hpp"

namespace chip::spec {

// Every error of one spec, each a full line without a trailing newline.
// what() is the lines joined with '\n'.
class SpecError : public std::runtime_error {
public:
    explicit SpecError(std::vector<std::string> errors);
    const std::vector<std::string> &errors() const noexcept { return errors_; }

private:
    std::vector<std::string> errors_;
};

// What a load checks beside the spec itself.
enum class Checks {
    Spec,     // the spec, its users, groups and log folders
    Machine,  // also each command[0] (executable, found in PATH) and each cwd (a folder)
};

// Reads and loads the spec at PATH; relative paths in it are taken from PATH's
// folder. An unreadable file is a SpecError "PATH: unable to read: <strerror>".
Spec load_file(const std::string &path, const Host &host = system_host(),
               Checks checks = Checks::Spec);

// Loads spec TEXT; FILE_LABEL names it in errors and in Spec::file, DIR is the
// folder relative paths (and includes) are taken from (made absolute against the cwd).
Spec load_string(std::string_view text, const std::string &file_label, const std::string &dir,
                 const Host &host = system_host(), Checks checks = Checks::Spec);

// Loads TEXT as one child of a spec (a worker or a whole supervisor subtree),
// with the spec's checks and errors whose pointers start at the child
// ("LABEL: /command: expected ..."). Relative paths are taken from DIR; a
// "join" may name only REGISTRIES.
core::ChildSpec load_child(std::string_view text, const std::string &label, const std::string &dir,
                           const std::vector<std::string> &registries,
                           const Host &host = system_host());

// The keys the loader accepts, in the order error messages list them. Exposed so
// that tests can hold the JSON Schema (config/chip.schema.json) to the same sets.
const std::vector<std::string> &top_level_keys();         // the document
const std::vector<std::string> &registry_keys();          // an item of "registries" as an object
const std::vector<std::string> &supervisor_keys();        // a supervisor body
const std::vector<std::string> &worker_keys();            // a child with "command" (with "name")
const std::vector<std::string> &supervisor_child_keys();  // a child with "supervisor" (with "name")
const std::vector<std::string> &socket_keys();            // "socket" as an object
const std::vector<std::string> &output_keys();            // "stdout"/"stderr" as an object
const std::vector<std::string> &backoff_keys();           // "backoff"
const std::vector<std::string> &include_keys();           // an include entry among children
const std::vector<std::string> &cluster_keys();           // "cluster"
const std::vector<std::string> &tls_keys();               // "cluster"'s "tls"

// Limits the loader enforces beyond the contract's lower bounds (also in the schema).
inline constexpr unsigned kMaxInstances = 100000;
inline constexpr unsigned kMaxRestartsLimit = 1000000;
inline constexpr double kMaxSeconds = 1e9;  // period and timeouts; keeps nanoseconds in int64
inline constexpr unsigned kMaxKeep = 1000;
inline constexpr std::uint64_t kMinMaxBytes = 4096;
inline constexpr std::uint32_t kMaxGroupsLimit = 1u << 20;
inline constexpr std::uint32_t kMaxMembersLimit = 1u << 24;
inline constexpr int kMaxDepth = 64;                     // nested supervisors below the root
inline constexpr std::size_t kMaxIncludeDepth = 16;      // files including files
inline constexpr std::size_t kMaxIncludedFiles = 10000;  // files included by one spec

}  // namespace chip::spec
