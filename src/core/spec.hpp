// What the supervision core decides on, per node: a worker's restart type,
// readiness and stop policy; a supervisor's strategy and intensity. Plain
// types, already validated and with every default filled in (src/spec makes
// them from JSON). Nodes share these definitions (shared_ptr to const), so a
// running node's definition is replaced by pointing it at a new one.
//
// How a worker is started (command, environment, user, output, groups to
// join) is not the core's business: it rides along as an opaque spec::Launch
// that only the daemon reads.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace chip::spec {
struct Launch;
}

namespace chip::core {

using Duration = std::chrono::nanoseconds;

enum class Strategy { OneForOne, OneForAll, RestForOne };
enum class RestartType { Permanent, Transient, Temporary };
enum class ReadyMode { Started, Notify };

// The delay before the restarts of a child that keeps failing: the k-th
// consecutive restart waits min(max, initial * factor^(k-1)), scaled by a
// random factor in [1 - jitter, 1 + jitter]. A child that stayed up reset_after
// starts again at k = 1.
struct Backoff {
    Duration initial = std::chrono::seconds(1);
    Duration max = std::chrono::seconds(30);
    double factor = 2.0;
    double jitter = 0.1;
    Duration reset_after = std::chrono::seconds(10);
    bool operator==(const Backoff &) const = default;
};

struct WorkerSpec {
    RestartType restart = RestartType::Permanent;
    // Set: a pool of N >= 0 workers NAME.0 ... NAME.N-1 (scaled at run time);
    // unset: a single worker NAME.
    std::optional<unsigned> instances;
    ReadyMode ready = ReadyMode::Started;
    Duration start_timeout = std::chrono::seconds(10);
    int stop_signal = 15;  // SIGTERM
    Duration stop_timeout = std::chrono::seconds(5);
    std::optional<Backoff> backoff;  // its own; unset: its supervisor's default, if any
    bool start = true;               // false: a new node of it is held stopped until a user start
    std::shared_ptr<const spec::Launch> launch;  // opaque here; null in the core's unit tests
};

struct ChildSpec;

// What a supervisor does when it exceeds its intensity (or its start fails).
enum class OnGiveUp {
    Escalate,    // it fails to its parent, a failing permanent child (OTP)
    StayFailed,  // it stays failed; its parent goes on as if a temporary child exited
};

struct SupervisorSpec {
    Strategy strategy = Strategy::OneForOne;
    OnGiveUp on_give_up = OnGiveUp::Escalate;
    unsigned max_restarts = 3;
    Duration period = std::chrono::seconds(5);
    std::optional<Backoff> backoff;           // its own, as a child of its parent
    bool start = true;                        // as a child: false holds a new node stopped
    std::optional<Backoff> children_backoff;  // the default of its direct children
    std::vector<ChildSpec> children;          // what a new node of it is built with
};

struct ChildSpec {
    std::string name;
    bool is_supervisor = false;
    std::shared_ptr<const WorkerSpec> worker;          // when !is_supervisor
    std::shared_ptr<const SupervisorSpec> supervisor;  // when is_supervisor
};

}  // namespace chip::core
