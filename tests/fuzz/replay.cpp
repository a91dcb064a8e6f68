// Runs a fuzz target's LLVMFuzzerTestOneInput over files, without libFuzzer:
// how the checked-in corpus is replayed by every build (meson test, any
// compiler). Each argument is a file or a folder (its regular files, in name
// order). A crash, a sanitizer report or a failed check of the target ends
// the process, which fails the test; the file being run is printed first
// with --verbose.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size);

namespace fs = std::filesystem;

namespace {

bool read_whole(const fs::path &path, std::vector<std::uint8_t> &out) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return false;
    out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    return !in.bad();
}

}  // namespace

int main(int argc, char **argv) {
    bool verbose = false;
    std::vector<fs::path> files;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--verbose") == 0) {
            verbose = true;
            continue;
        }
        fs::path p = argv[i];
        std::error_code ec;
        if (fs::is_directory(p, ec)) {
            std::vector<fs::path> found;
            for (const auto &e : fs::directory_iterator(p, ec))
                if (e.is_regular_file()) found.push_back(e.path());
            if (ec) {
                std::fprintf(stderr, "replay: %s: %s\n", p.c_str(), ec.message().c_str());
                return 2;
            }
            std::sort(found.begin(), found.end());
            files.insert(files.end(), found.begin(), found.end());
        } else {
            files.push_back(p);
        }
    }
    if (files.empty()) {
        std::fprintf(stderr, "usage: %s [--verbose] FILE_OR_FOLDER...\n", argv[0]);
        return 2;
    }
    std::vector<std::uint8_t> data;
    std::size_t bytes = 0;
    for (const auto &f : files) {
        if (!read_whole(f, data)) {
            std::fprintf(stderr, "replay: unable to read %s\n", f.c_str());
            return 2;
        }
        if (verbose) std::fprintf(stderr, "replay: %s\n", f.c_str());
        // libFuzzer never passes a null pointer, even for an empty input.
        static const std::uint8_t kEmpty = 0;
        LLVMFuzzerTestOneInput(data.empty() ? &kEmpty : data.data(), data.size());
        bytes += data.size();
    }
    std::printf("replayed %zu inputs (%zu bytes)\n", files.size(), bytes);
    return 0;
}
