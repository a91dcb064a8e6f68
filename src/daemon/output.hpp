// Worker output capture: chipd holds the read end of a pipe per captured stream
// of each worker process and forwards whole lines to a sink: chipd's own
// stdout/stderr with the worker's path as prefix ("inherit"), or a size-rotated
// file. It does not decide which worker gets what (the daemon does).
//
// A pipe lives as long as any process holds its write end (the worker and its
// descendants), so output written while a worker is being restarted is still
// read to the end: nothing is lost across a restart. Lines are cut as
// line_splitter.hpp says (long ones in pieces). Write failures to a file
// (full disk, unwritable folder) drop whole lines and count them: reported
// when they start, again at most once a minute while they last, and when
// writes succeed again (README.md, "Log files"). chipd keeps reading
// meanwhile, so a worker is never blocked on a full pipe by a full disk.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/result.hpp"
#include "daemon/line_splitter.hpp"
#include "spec/spec.hpp"
#include "os/fd.hpp"
#include "os/folder.hpp"
#include "uv/uv.hpp"

namespace chip::daemon {

// A monotonic clock reading (os::monotonic_now()), passed in by the callers:
// sinks read no clock.
using Time = std::chrono::nanoseconds;

// Where complete lines go.
class Sink {
public:
    virtual ~Sink() = default;
    // Writes DATA: one or more complete lines, each ending in '\n', at NOW.
    virtual void write_lines(const std::string &prefix, const char *data, std::size_t len,
                             Time now) = 0;
};

// chipd's stdout or stderr: each line as "PREFIX: line", or with JSON set
// (--log-format json) as {"event": "output", "path": PREFIX, "stream": STREAM,
// "line": LINE}.
class InheritSink : public Sink {
public:
    explicit InheritSink(int fd, bool json = false, std::string stream = {})
        : fd_(fd), json_(json), stream_(std::move(stream)) {}
    void write_lines(const std::string &prefix, const char *data, std::size_t len,
                     Time now) override;

private:
    int fd_;
    bool json_;
    std::string stream_;
    std::string buf_;
};

// A log file rotated by size: PATH is live; before a write would pass
// max_bytes it becomes PATH.1 (PATH.1 -> PATH.2 ... up to PATH.keep, the oldest
// dropped). A single line longer than max_bytes goes whole to a fresh file.
// Every open and rename is relative to PATH's folder, opened and checked
// afresh each time, and never goes through a symlink (os/folder.hpp): what
// chipd refuses there is a failed start for a worker about to be started, and
// dropped lines for those running.
class FileSink : public Sink {
public:
    using Warn = std::function<void(const std::string &)>;
    // Opens nothing yet: open_for_start() does, before the first worker.
    FileSink(const spec::OutputSpec &spec, Warn warn);
    // Before a worker is started to write here: opens the file unless it is
    // open. The error when chipd refuses it ("cannot open log file PATH: is a
    // symbolic link; refused"), which fails that start; a file that cannot be
    // opened for now (a missing folder) is warned about and its lines dropped
    // and counted, as for a full disk.
    Result<void> open_for_start(Time now);
    void write_lines(const std::string &prefix, const char *data, std::size_t len,
                     Time now) override;
    const std::string &path() const { return path_; }
    // What it was made from (for the hand-off).
    spec::OutputSpec spec() const {
        spec::OutputSpec o;
        o.mode = spec::OutputSpec::Mode::File;
        o.file = path_;
        o.max_bytes = max_bytes_;
        o.keep = keep_;
        return o;
    }
    std::uint64_t dropped_bytes() const { return dropped_; }
    std::uint64_t dropped_lines() const { return dropped_lines_; }

private:
    // Opens the live file; false, warned about once while failing, when it
    // cannot be. A refusal is left in refused_ for open_for_start.
    bool open_file(Time now, bool warn_refusal = true);
    bool open_in(const os::Folder &folder, Time now, bool warn_refusal);
    void open_failed(const os::OpenFailure &why, Time now, bool warn_refusal);
    void rotate(Time now);
    // Appends DATA (whole lines); on failure the file is cut back to its size
    // before, so a partial line is never left behind.
    bool append(const char *data, std::size_t len);
    void drop(const char *data, std::size_t len, const std::string &why, Time now);

    std::string path_;
    std::string folder_, name_;  // PATH's folder and its name in it
    std::uint64_t max_bytes_;
    unsigned keep_;
    Warn warn_;
    os::UniqueFd fd_;
    std::uint64_t size_ = 0;
    std::uint64_t dropped_ = 0, dropped_lines_ = 0;
    std::uint64_t dropped_reported_ = 0;
    bool failing_ = false;
    std::optional<Error> refused_;  // of the last open, when chipd refused the file
    Time last_report_{};
};

// One pipe read end being drained into a sink.
class OutputPipe {
public:
    // Reads FD (non-blocking) until EOF; then calls on_eof (which may destroy this).
    // PARTIAL: the unfinished line another chipd had read from FD before
    // handing it over.
    OutputPipe(uv::Loop &loop, os::UniqueFd fd, std::shared_ptr<Sink> sink, std::string prefix,
               std::function<void(OutputPipe *)> on_eof, std::string_view partial = {});
    OutputPipe(const OutputPipe &) = delete;
    OutputPipe &operator=(const OutputPipe &) = delete;

    // Forwards what can be read now (at most a few MiB) and a partial last
    // line, without waiting: for chipd's exit, when the loop will not run again.
    void drain();

    // For the hand-off: its read end (still open, unread data left in it), the
    // prefix of its lines, its sink and the unfinished line read so far.
    int fd() const { return fd_.get(); }
    const std::string &prefix() const { return prefix_; }
    const Sink *sink() const { return sink_.get(); }
    const std::string &partial() const { return lines_.partial(); }

private:
    void on_readable();
    // Forwards the complete lines of DATA (or, at EOF, what is left).
    void consume(const char *data, std::size_t len);
    void finish();

    os::UniqueFd fd_;
    std::shared_ptr<Sink> sink_;
    std::string prefix_;
    LineSplitter lines_;
    std::function<void(OutputPipe *)> on_eof_;
    uv::Poll poll_;
};

}  // namespace chip::daemon
