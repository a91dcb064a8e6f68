#include "common/search_path.hpp"

namespace chip {

std::vector<std::string> search_candidates(const std::string &search, const std::string &name) {
    std::vector<std::string> out;
    std::size_t start = 0;
    for (;;) {
        auto colon = search.find(':', start);
        std::string dir = search.substr(start, colon == std::string::npos ? colon : colon - start);
        out.push_back((dir.empty() ? std::string(".") : dir) + "/" + name);
        if (colon == std::string::npos) break;
        start = colon + 1;
    }
    return out;
}

}  // namespace chip
