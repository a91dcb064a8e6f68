#include "common/suggest.hpp"

#include <algorithm>

namespace chip {

// The classic two-row dynamic programme; the length check first makes a huge
// unknown key cost nothing.
std::size_t edit_distance(std::string_view a, std::string_view b, std::size_t cap) {
    std::size_t diff = a.size() > b.size() ? a.size() - b.size() : b.size() - a.size();
    if (diff > cap) return cap + 1;
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diag = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            std::size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diag = up;
        }
    }
    return std::min(row[b.size()], cap + 1);
}

// Ties go to the earlier key in KNOWN, which lists the likelier keys first.
std::optional<std::string> closest(std::string_view unknown,
                                   const std::vector<std::string> &known) {
    auto lower = [](std::string_view s) {
        std::string out(s);
        for (char &c : out)
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        return out;
    };
    std::string unknown_lower = lower(unknown);
    for (const auto &k : known)
        if (lower(k) == unknown_lower) return k;
    std::optional<std::string> best;
    std::size_t best_distance = 3;
    for (const auto &k : known) {
        std::size_t d = edit_distance(unknown, k, 2);
        // A distance as large as the key itself would match any short key.
        if (d < best_distance && d < unknown.size()) {
            best = k;
            best_distance = d;
        }
    }
    return best;
}

}  // namespace chip
