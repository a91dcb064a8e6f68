// Where execvp would look for a program named without a '/': each folder of
// a PATH-style search list, in order, an empty element meaning the current
// folder (POSIX). Pure: strings in, strings out.
#pragma once

#include <string>
#include <vector>

namespace chip {

// "DIR/NAME" for each DIR of SEARCH ("/usr/bin:/bin"), "./NAME" for an empty one.
std::vector<std::string> search_candidates(const std::string &search, const std::string &name);

}  // namespace chip
