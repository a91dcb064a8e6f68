// "Did you mean": the known word a mistyped one was most likely meant to be,
// for spec keys and node paths alike.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chip {

// Levenshtein distance, or CAP + 1 when it exceeds CAP (cheap for long strings).
std::size_t edit_distance(std::string_view a, std::string_view b, std::size_t cap);

// The known word UNKNOWN was most likely meant to be: a case-insensitive match,
// else the closest within edit distance 2; nullopt when none is close.
std::optional<std::string> closest(std::string_view unknown, const std::vector<std::string> &known);

}  // namespace chip
