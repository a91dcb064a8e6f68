#include "daemon/fd_budget.hpp"

#include <set>

namespace chip::daemon {

namespace {

void count(const core::SupervisorSpec &sup, FdEstimate &e, std::set<std::string> &files) {
    using Mode = spec::OutputSpec::Mode;
    for (const auto &c : sup.children) {
        if (c.is_supervisor) {
            count(*c.supervisor, e, files);
            continue;
        }
        const core::WorkerSpec &w = *c.worker;
        std::size_t n = w.instances.value_or(1);
        const spec::Launch &l = spec::launch_of(w);
        bool shared =
            l.out.mode == Mode::File && l.err.mode == Mode::File && l.out.file == l.err.file;
        std::size_t pipes = (l.out.mode != Mode::Null) + (l.err.mode != Mode::Null && !shared);
        e.workers += n;
        e.pipes += n * pipes;
        if (w.ready == core::ReadyMode::Notify) e.notify += n;
        for (const auto *o : {&l.out, &l.err})
            if (o->mode == Mode::File) files.insert(o->file);
    }
}

}  // namespace

FdEstimate estimate_fds(const spec::Spec &spec) {
    FdEstimate e;
    std::set<std::string> files;
    if (spec.root) count(*spec.root, e, files);
    e.log_files = files.size();
    e.total = kChipdOwnFds + e.pipes + e.notify + e.log_files;
    return e;
}

std::string fd_warning(const std::string &file, const FdEstimate &e, std::size_t limit) {
    if (e.total <= limit) return {};
    return file + ": its " + std::to_string(e.workers) + " workers may need about " +
           std::to_string(e.total) + " file descriptors (" + std::to_string(e.pipes) +
           " output pipes, " + std::to_string(e.notify) + " notify sockets, " +
           std::to_string(e.log_files) + " log files, " + std::to_string(kChipdOwnFds) +
           " for chipd), more than RLIMIT_NOFILE allows (" + std::to_string(limit) +
           "): raise its hard limit (ulimit -Hn, systemd's LimitNOFILE=) or workers will "
           "fail to start";
}

}  // namespace chip::daemon
