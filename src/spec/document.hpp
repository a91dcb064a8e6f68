// JSON text -> a JSON document, for the spec loader, plus the small helpers its
// error messages need (a value shown briefly, a pointer token, "did you mean").
//
// Parsing keeps key order (ordered_json: env and join keep spec order), skips
// comments (// to the end of the line, /* ... */), reports
// syntax errors at a 1-based line and column, and reports duplicate keys at
// their JSON Pointer. It does not know what a spec is: that is loader.cpp.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/suggest.hpp"

namespace chip::spec {

using Json = nlohmann::ordered_json;

struct Document {
    Json root;                        // null when syntax_error
    bool syntax_error = false;        // then errors holds one "FILE:L:C: syntax error: ..." line
    std::vector<std::string> errors;  // full lines, FILE-prefixed
};

// Parses TEXT. Never throws on any input (nlohmann's own exceptions are turned
// into the syntax error); deep nesting is fine (nlohmann parses iteratively).
Document parse_document(std::string_view text, const std::string &file);

// The 1-based line and column of byte OFFSET (0-based) in TEXT.
std::pair<std::size_t, std::size_t> line_column(std::string_view text, std::size_t offset);

// V dumped compactly, cut after about BUDGET bytes with "...". Bounded in time
// and stack whatever V is (the cut also bounds the recursion depth).
std::string describe(const Json &v, std::size_t budget = 60);

// KEY as one JSON Pointer token ("~" -> "~0", "/" -> "~1"), shown safely on one
// line: control characters escaped, very long keys cut.
std::string pointer_token(std::string_view key);

// POINTER extended by KEY; the document's own pointer is "" (shown as "/").
std::string child_pointer(const std::string &pointer, std::string_view key);
std::string child_pointer(const std::string &pointer, std::size_t index);

// "Did you mean" for keys (common/suggest.hpp).
using chip::closest;
using chip::edit_distance;

}  // namespace chip::spec
