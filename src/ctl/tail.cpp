#include "ctl/tail.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "os/clock.hpp"
#include "os/fd.hpp"
#include "os/file.hpp"
#include "os/self.hpp"
#include "os/socket.hpp"

namespace chip::ctl {

namespace {

constexpr std::size_t kBlock = 64 * 1024;
constexpr unsigned kMaxRotated = 1000;  // the spec's largest "keep"

Error io_error(int code, const std::string &what) {
    return make_error(code, what + ": " + std::strerror(code));
}

// A file being followed, identified by its inode so a rotation is noticed.
struct Followed {
    os::UniqueFd fd;
    dev_t dev = 0;
    ino_t ino = 0;
    off_t offset = 0;
};

// Opens FILE into F (closing what F held). False when it does not exist (yet).
Result<bool> open_followed(const std::string &file, Followed &f) {
    f.fd.reset();
    auto fd = os::open_read(file);
    if (!fd) {
        if (fd.error().code == ENOENT) return false;
        return io_error(fd.error().code, file);
    }
    auto id = os::file_identity(fd->get());
    if (!id) return io_error(id.error().code, file);
    f.fd = std::move(*fd);
    f.dev = id->dev;
    f.ino = id->ino;
    f.offset = 0;
    return true;
}

// Where a file was rotated to: N when FILE.N has inode DEV:INO, 0 if it is
// not found (dropped, or not rotated by chipd's naming).
unsigned rotated_index(const std::string &file, dev_t dev, ino_t ino) {
    for (unsigned i = 1; i <= kMaxRotated; ++i) {
        auto id = os::path_identity(file + "." + std::to_string(i));
        if (!id) return 0;
        if (id->dev == dev && id->ino == ino) return i;
    }
    return 0;
}

}  // namespace

Result<off_t> last_lines_offset(int fd, off_t size, std::size_t lines) {
    if (lines == 0 || size <= 0) return size;
    std::vector<char> buf(kBlock);
    std::size_t seen = 0;
    off_t end = size;
    while (end > 0) {
        off_t start = end > static_cast<off_t>(kBlock) ? end - static_cast<off_t>(kBlock) : 0;
        auto want = static_cast<std::size_t>(end - start);
        std::size_t got = 0;
        while (got < want) {
            ssize_t n =
                os::read_at(fd, buf.data() + got, want - got, start + static_cast<off_t>(got));
            if (n < 0) return io_error(static_cast<int>(-n), "read");
            if (n == 0) return make_error(EIO, "read: file shrank while being read");
            got += static_cast<std::size_t>(n);
        }
        for (std::size_t i = want; i-- > 0;) {
            off_t at = start + static_cast<off_t>(i);
            // The newline ending the file closes the last line; it starts none.
            if (buf[i] == '\n' && at != size - 1 && ++seen == lines) return at + 1;
        }
        end = start;
    }
    return off_t{0};
}

Result<off_t> copy_to_end(int fd, off_t offset, int out) {
    std::vector<char> buf(kBlock);
    for (;;) {
        ssize_t n = os::read_at(fd, buf.data(), buf.size(), offset);
        if (n < 0) return io_error(static_cast<int>(-n), "read");
        if (n == 0) return offset;
        if (auto w = os::write_all(out, buf.data(), static_cast<std::size_t>(n)); !w)
            return io_error(w.error().code, "write");
        offset += n;
    }
}

Result<void> print_last_lines(const std::string &file, std::size_t lines, int out) {
    Followed f;
    auto opened = open_followed(file, f);
    if (!opened) return opened.error();
    if (!*opened) return io_error(ENOENT, file);
    auto id = os::file_identity(f.fd.get());
    if (!id) return io_error(id.error().code, file);
    auto from = last_lines_offset(f.fd.get(), id->size, lines);
    if (!from) return make_error(from.error().code, file + ": " + from.error().message);
    auto done = copy_to_end(f.fd.get(), *from, out);
    if (!done) return make_error(done.error().code, file + ": " + done.error().message);
    return {};
}

Result<void> follow(const std::string &file, std::size_t lines, int out,
                    std::chrono::milliseconds poll) {
    Followed f;
    auto opened = open_followed(file, f);
    if (!opened) return opened.error();
    if (*opened) {
        auto id = os::file_identity(f.fd.get());
        if (!id) return io_error(id.error().code, file);
        auto from = last_lines_offset(f.fd.get(), id->size, lines);
        if (!from) return make_error(from.error().code, file + ": " + from.error().message);
        f.offset = *from;
    }
    for (;;) {
        if (f.fd) {
            auto done = copy_to_end(f.fd.get(), f.offset, out);
            if (!done) return make_error(done.error().code, file + ": " + done.error().message);
            f.offset = *done;
        }
        os::sleep_for(poll);
        auto st = os::path_identity(file);
        if (!st) {
            // Between the rename to FILE.1 and the creation of the new FILE.
            if (st.error().code == ENOENT) continue;
            return io_error(st.error().code, file);
        }
        if (!f.fd || st->dev != f.dev || st->ino != f.ino) {
            // Rotated: finish the old file (written up to the rename), then
            // the files rotated after it (several rotations within one poll:
            // it is now FILE.N, the newer ones FILE.N-1 ... FILE.1), then FILE.
            // LAST is the newest file printed whole; once it sits at FILE.1
            // while FILE is open, nothing was skipped (else rotations went on
            // meanwhile: go again).
            if (!f.fd) {
                auto reopened = open_followed(file, f);
                if (!reopened) return reopened.error();
                continue;
            }
            auto done = copy_to_end(f.fd.get(), f.offset, out);
            if (!done) return make_error(done.error().code, file + ": " + done.error().message);
            // Then each newer file in turn, found by where LAST (the newest
            // file printed) sits now, checked again after the open so that a
            // rotation meanwhile (names shifting up) is noticed and retried.
            dev_t last_dev = f.dev;
            ino_t last_ino = f.ino;
            for (int tries = 0; tries < 10000; ++tries) {
                unsigned i = rotated_index(file, last_dev, last_ino);
                if (i <= 1) {
                    // LAST is FILE.1 (or was dropped): FILE comes next.
                    auto reopened = open_followed(file, f);
                    if (!reopened) return reopened.error();
                    if (i == 0 || rotated_index(file, last_dev, last_ino) == 1) break;
                    continue;
                }
                Followed r;
                auto o = open_followed(file + "." + std::to_string(i - 1), r);
                if (!o) return o.error();
                if (!*o || rotated_index(file, last_dev, last_ino) != i) continue;
                auto d = copy_to_end(r.fd.get(), 0, out);
                if (!d) return make_error(d.error().code, file + ": " + d.error().message);
                last_dev = r.dev;
                last_ino = r.ino;
            }
        } else if (st->size < f.offset) {
            f.offset = 0;  // truncated in place: start over, as tail -F does
        }
    }
}

namespace {

// Runs PRODUCE(fd) in a thread that writes to a pipe, and writes every line
// read from it to OUT as "PREFIX: line" (under LOCK, whole), until the
// producer is done. The producer's result.
Result<void> prefixed(const std::string &prefix, const std::function<Result<void>(int)> &produce,
                      int out, std::mutex &lock) {
    os::UniqueFd r, w;
    if (auto p = os::make_pipe(r, w, true); !p) return p.error();
    std::optional<Result<void>> result;
    std::thread producer([&] {
        result = produce(w.get());
        w.reset();  // EOF for the reader
    });
    std::string pending, lines;
    std::vector<char> buf(kBlock);
    for (;;) {
        ssize_t n = os::read_some(r.get(), buf.data(), buf.size());
        if (n <= 0) break;
        pending.append(buf.data(), static_cast<std::size_t>(n));
        lines.clear();
        std::size_t start = 0;
        for (std::size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1)
            lines.append(prefix).append(": ").append(pending, start, nl + 1 - start);
        pending.erase(0, start);
        if (!lines.empty()) {
            std::lock_guard<std::mutex> hold(lock);
            (void)os::write_all(out, lines.data(), lines.size());
        }
    }
    producer.join();
    if (!pending.empty()) {
        // A last line without its newline (the file ended there).
        pending = prefix + ": " + pending + "\n";
        std::lock_guard<std::mutex> hold(lock);
        (void)os::write_all(out, pending.data(), pending.size());
    }
    return result.value_or(Result<void>{});
}

}  // namespace

Result<void> show_files(const std::vector<std::pair<std::string, std::string>> &files,
                        std::size_t lines, bool follow_them, int out,
                        std::chrono::milliseconds poll) {
    std::mutex lock;
    if (!follow_them) {
        for (const auto &[prefix, file] : files) {
            auto r = prefixed(
                prefix, [&, f = file](int fd) { return print_last_lines(f, lines, fd); }, out,
                lock);
            if (!r) return r;
        }
        return {};
    }
    // One thread a file, each following it to OUT; the first error ends
    // them all (the others would follow for ever): its message, exit 1.
    std::vector<std::thread> threads;
    for (const auto &[prefix, file] : files)
        threads.emplace_back([&, p = prefix, f = file] {
            auto r = prefixed(
                p, [&](int fd) { return follow(f, lines, fd, poll); }, out, lock);
            if (r) return;
            std::string msg = "chipctl: " + r.error().message + "\n";
            std::lock_guard<std::mutex> hold(lock);
            (void)os::write_all(2, msg.data(), msg.size());
            os::exit_now(1);
        });
    for (auto &t : threads) t.join();
    return {};
}

}  // namespace chip::ctl
