// doctest prints a list of strings (a trace of actions, the lines of a change
// list) as {"a", "b"} in failure messages.
#pragma once

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace doctest {
template <>
struct StringMaker<std::vector<std::string>> {
    static String convert(const std::vector<std::string> &v) {
        std::string out = "{";
        for (const auto &s : v) out += (out.size() > 1 ? ", \"" : "\"") + s + "\"";
        return (out + "}").c_str();
    }
};
}  // namespace doctest
