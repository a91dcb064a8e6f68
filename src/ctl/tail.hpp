// `chipctl logs`: the last lines of a log file, and following it across the
// size-based rotation chipd does (PATH renamed PATH.1, a fresh PATH created;
// README.md, "Log files"). File I/O on descriptors, through src/os; no chipd
// involved.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "common/result.hpp"

namespace chip::ctl {

// The offset where the last LINES lines of the open file FD (SIZE bytes long)
// begin, reading backwards from the end in blocks. A last line without its
// newline counts as a line, as in tail(1); LINES 0 gives SIZE.
Result<off_t> last_lines_offset(int fd, off_t size, std::size_t lines);

// Writes the bytes of FD from OFFSET to its end on the descriptor OUT; returns
// the offset reached.
Result<off_t> copy_to_end(int fd, off_t offset, int out);

// Prints the last LINES lines of FILE on OUT. ENOENT etc. are errors whose
// message names FILE.
Result<void> print_last_lines(const std::string &file, std::size_t lines, int out);

// Prints the last LINES lines of FILE on OUT, then keeps printing what is
// appended, polling every POLL: a new inode at FILE (rotation) is read from its
// start after the old one is drained (and so are the files rotated in between
// when there were several rotations within one POLL: FILE.N-1 ... FILE.1); a file that shrank
// (truncation) is read again from its start. A FILE that does not exist yet is waited for. Returns
// only on an I/O error (the user ends it with ^C).
Result<void> follow(const std::string &file, std::size_t lines, int out,
                    std::chrono::milliseconds poll);

// Several workers' files (a pool's, one per instance): FILES as (prefix,
// file). Without FOLLOW, the last LINES lines of each in turn; with it, then
// what is appended to any of them, as it comes. Every line goes to OUT whole,
// as "PREFIX: line". Without FOLLOW it returns at the end or on an I/O error;
// with it, an I/O error is said on stderr and ends the process (exit 1).
Result<void> show_files(const std::vector<std::pair<std::string, std::string>> &files,
                        std::size_t lines, bool follow, int out, std::chrono::milliseconds poll);

}  // namespace chip::ctl
