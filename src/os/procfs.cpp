#include "os/procfs.hpp"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "os/fd.hpp"
#include "os/file.hpp"

namespace chip::os {

namespace {

std::string proc_file(pid_t pid, const char *name) {
    return "/proc/" + std::to_string(pid) + "/" + name;
}

// The fields of /proc/PID/stat after the command's closing parenthesis
// (field 3, the state, first): the command itself may hold spaces and ')'.
std::optional<std::vector<std::string>> stat_fields(pid_t pid) {
    auto text = read_small_file(proc_file(pid, "stat"), 4096);
    if (!text) return std::nullopt;
    auto close = text->rfind(')');
    if (close == std::string::npos) return std::nullopt;
    std::istringstream in(text->substr(close + 1));
    std::vector<std::string> out;
    for (std::string f; in >> f;) out.push_back(f);
    return out;
}

}  // namespace

std::optional<std::uint64_t> process_rss_bytes(pid_t pid) {
    auto text = read_small_file(proc_file(pid, "statm"), 4096);
    if (!text) return std::nullopt;
    std::istringstream in(*text);
    std::uint64_t size = 0, resident = 0;
    if (!(in >> size >> resident)) return std::nullopt;
    return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

std::optional<double> process_cpu_seconds(pid_t pid) {
    auto f = stat_fields(pid);
    // utime and stime are fields 14 and 15: 11 and 12 after the state.
    if (!f || f->size() < 13) return std::nullopt;
    double ticks = std::strtod((*f)[11].c_str(), nullptr) + std::strtod((*f)[12].c_str(), nullptr);
    return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

std::string process_command(pid_t pid, std::size_t limit) {
    auto text = read_small_file(proc_file(pid, "cmdline"), 1 << 20);
    std::string out;
    if (text) {
        out = text->substr(0, limit);
        while (!out.empty() && out.back() == '\0') out.pop_back();
        std::replace(out.begin(), out.end(), '\0', ' ');
    }
    if (out.empty())
        if (auto comm = read_small_file(proc_file(pid, "comm"), 64)) {
            out = *comm;
            while (!out.empty() && out.back() == '\n') out.pop_back();
        }
    return out;
}

std::vector<pid_t> process_group_members(pid_t pgid) {
    std::vector<pid_t> out;
    DIR *dir = ::opendir("/proc");
    if (!dir) return out;
    while (dirent *e = ::readdir(dir)) {
        char *end = nullptr;
        long pid = std::strtol(e->d_name, &end, 10);
        if (pid <= 0 || *end) continue;
        auto f = stat_fields(static_cast<pid_t>(pid));
        // pgrp is field 5: the third after the state.
        if (f && f->size() > 2 && std::atol((*f)[2].c_str()) == pgid)
            out.push_back(static_cast<pid_t>(pid));
    }
    ::closedir(dir);
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace chip::os
