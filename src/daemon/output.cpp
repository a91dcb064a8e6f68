#include "daemon/output.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "os/clock.hpp"
#include "os/socket.hpp"

namespace chip::daemon {

void InheritSink::write_lines(const std::string &prefix, const char *data, std::size_t len, Time) {
    buf_.clear();
    const char *end = data + len;
    while (data < end) {
        const char *nl = static_cast<const char *>(std::memchr(data, '\n', end - data));
        const char *stop = nl ? nl + 1 : end;
        if (json_) {
            nlohmann::json j{{"event", "output"},
                             {"path", prefix},
                             {"stream", stream_},
                             {"line", std::string(data, nl ? nl : end)}};
            // Output is bytes: invalid UTF-8 becomes U+FFFD, never a throw.
            buf_.append(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
            buf_.push_back('\n');
        } else {
            buf_.append(prefix);
            buf_.append(": ");
            buf_.append(data, stop);
        }
        data = stop;
    }
    // Blocking write: chipd's own stdout/stderr are the user's terminal, the
    // journal or a container runtime, all of which read promptly.
    (void)os::write_all(fd_, buf_.data(), buf_.size());
}

FileSink::FileSink(const spec::OutputSpec &spec, Warn warn)
    : path_(spec.file), max_bytes_(spec.max_bytes), keep_(spec.keep), warn_(std::move(warn)) {
    // The loader made PATH absolute, naming a file: there is a '/' before its name.
    auto slash = path_.rfind('/');
    folder_ = slash == 0 ? "/" : path_.substr(0, slash);
    name_ = path_.substr(slash + 1);
}

Result<void> FileSink::open_for_start(Time now) {
    if (fd_ || open_file(now, false)) return {};
    if (refused_) return make_error(refused_->code, "cannot open log file " + refused_->message);
    return {};
}

bool FileSink::open_file(Time now, bool warn_refusal) {
    os::OpenFailure why;
    auto folder = os::Folder::open(folder_, why);
    if (!folder) {
        open_failed(why, now, warn_refusal);
        return false;
    }
    return open_in(*folder, now, warn_refusal);
}

bool FileSink::open_in(const os::Folder &folder, Time now, bool warn_refusal) {
    os::OpenFailure why;
    fd_ = folder.open_append(name_, size_, why);
    if (!fd_) {
        open_failed(why, now, warn_refusal);
        return false;
    }
    refused_.reset();
    return true;
}

void FileSink::open_failed(const os::OpenFailure &why, Time now, bool warn_refusal) {
    // A refusal at a worker's start is told by its failed start instead.
    if (why.refused) {
        refused_ = make_error(why.error.code, path_ + ": " + why.error.message);
        if (!warn_refusal) return;
    } else {
        refused_.reset();
    }
    if (!failing_) {
        warn_("cannot open log file " + path_ + ": " + why.error.message +
              " (output is dropped and counted until it can be written)");
        last_report_ = now;
    }
    failing_ = true;
}

void FileSink::rotate(Time now) {
    fd_.reset();
    // One folder, checked once, for the renames and the new file: renameat
    // renames a symlink planted as PATH.k itself, never what it points to.
    os::OpenFailure why;
    auto folder = os::Folder::open(folder_, why);
    if (!folder) {
        open_failed(why, now, true);
        return;
    }
    // PATH.keep is dropped by being overwritten; shift the others up.
    for (unsigned i = keep_; i > 1; --i)
        folder->rename(name_ + "." + std::to_string(i - 1), name_ + "." + std::to_string(i));
    folder->rename(name_, name_ + ".1");
    open_in(*folder, now, true);
}

void FileSink::write_lines(const std::string &, const char *data, std::size_t len, Time now) {
    const char *end = data + len;
    while (data < end) {
        // Take as many whole lines as fit in the current file; at least one.
        const char *stop = data;
        std::uint64_t room = size_ < max_bytes_ ? max_bytes_ - size_ : 0;
        while (stop < end) {
            const char *nl = static_cast<const char *>(std::memchr(stop, '\n', end - stop));
            const char *line_end = nl ? nl + 1 : end;
            if (static_cast<std::uint64_t>(line_end - data) > room) break;
            stop = line_end;
        }
        if (stop == data) {
            // The next line does not fit: rotate (unless the file is empty, for
            // a line longer than max_bytes), then write it whole.
            if (size_ > 0 || !fd_) rotate(now);
            const char *nl = static_cast<const char *>(std::memchr(data, '\n', end - data));
            stop = nl ? nl + 1 : end;
        }
        std::size_t n = static_cast<std::size_t>(stop - data);
        if (!fd_ && !open_file(now)) {
            drop(data, n, "cannot open it", now);
        } else if (!append(data, n)) {
            drop(data, n, std::strerror(errno), now);
        } else if (failing_) {
            warn_("log file " + path_ + " is written again; " + std::to_string(dropped_lines_) +
                  " lines (" + std::to_string(dropped_) + " bytes) dropped so far");
            dropped_reported_ = dropped_;
            failing_ = false;
        }
        data = stop;
    }
}

bool FileSink::append(const char *data, std::size_t len) {
    // A short write on a full disk leaves part of a line: append_whole cuts it
    // off, so the file holds whole lines only.
    if (auto r = os::append_whole(fd_.get(), data, len, size_); !r) {
        errno = r.error().code;
        return false;
    }
    size_ += len;
    return true;
}

void FileSink::drop(const char *data, std::size_t len, const std::string &why, Time t) {
    dropped_ += len;
    for (const char *p = data;
         (p = static_cast<const char *>(std::memchr(p, '\n', data + len - p))); ++p)
        ++dropped_lines_;
    if (!failing_) {
        warn_("cannot write log file " + path_ + ": " + why +
              " (output is dropped and counted until writes succeed)");
        last_report_ = t;
    } else if (t - last_report_ >= std::chrono::minutes(1) && dropped_ != dropped_reported_) {
        warn_("still cannot write log file " + path_ + ": " + why + "; " +
              std::to_string(dropped_lines_) + " lines (" + std::to_string(dropped_) +
              " bytes) dropped so far");
        last_report_ = t;
        dropped_reported_ = dropped_;
    }
    failing_ = true;
}

OutputPipe::OutputPipe(uv::Loop &loop, os::UniqueFd fd, std::shared_ptr<Sink> sink,
                       std::string prefix, std::function<void(OutputPipe *)> on_eof,
                       std::string_view partial)
    : fd_(std::move(fd)),
      sink_(std::move(sink)),
      prefix_(std::move(prefix)),
      on_eof_(std::move(on_eof)),
      poll_(loop, fd_.get(), [this](int) { on_readable(); }) {
    lines_.set_partial(partial);
    poll_.start(uv::Poll::Readable);
}

void OutputPipe::on_readable() {
    static char buf[64 * 1024];
    for (int rounds = 0; rounds < 4; ++rounds) {
        ssize_t n = os::read_some(fd_.get(), buf, sizeof buf);
        if (n == -EAGAIN) return;
        if (n <= 0) {
            // EOF (every writer is gone) or an error: flush and finish.
            finish();
            poll_.stop();
            on_eof_(this);
            return;
        }
        consume(buf, static_cast<std::size_t>(n));
        if (static_cast<std::size_t>(n) < sizeof buf) return;
    }
}

void OutputPipe::drain() {
    static char buf[64 * 1024];
    // Bounded: a descendant that keeps writing must not hold chipd's exit.
    for (int rounds = 0; rounds < 64; ++rounds) {
        ssize_t n = os::read_some(fd_.get(), buf, sizeof buf);
        if (n <= 0) break;
        consume(buf, static_cast<std::size_t>(n));
    }
    finish();
}

void OutputPipe::consume(const char *data, std::size_t len) {
    Time now = os::monotonic_now();
    lines_.feed({data, len}, [&](std::string_view piece) {
        sink_->write_lines(prefix_, piece.data(), piece.size(), now);
    });
}

void OutputPipe::finish() {
    Time now = os::monotonic_now();
    lines_.finish([&](std::string_view piece) {
        sink_->write_lines(prefix_, piece.data(), piece.size(), now);
    });
}

}  // namespace chip::daemon
