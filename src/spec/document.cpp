#include "spec/document.hpp"

#include <algorithm>
#include <cstdio>
#include <deque>
#include <unordered_map>
#include <utility>

namespace chip::spec {

namespace {

constexpr std::size_t kMaxMessage = 200;

// Builds the document from nlohmann's SAX events. Unlike nlohmann's own DOM
// builder it sees each key before it is stored, so it can report duplicates at
// their pointer, and it records where a syntax error happened (nlohmann's
// exceptions for number overflow carry no position).
class Builder final : public nlohmann::json_sax<Json> {
public:
    Builder(Json &root, const std::string &file, std::vector<std::string> &errors)
        : root_(root), file_(file), errors_(errors) {}

    bool null() override { return put(Json(nullptr)); }
    bool boolean(bool b) override { return put(Json(b)); }
    bool number_integer(number_integer_t v) override { return put(Json(v)); }
    bool number_unsigned(number_unsigned_t v) override { return put(Json(v)); }
    bool number_float(number_float_t v, const string_t &) override { return put(Json(v)); }
    bool string(string_t &s) override { return put(Json(std::move(s))); }
    bool binary(binary_t &b) override { return put(Json::binary(std::move(b))); }

    bool start_object(std::size_t) override { return push(Json::object()); }
    bool start_array(std::size_t) override { return push(Json::array()); }
    bool end_array() override {
        frames_.pop_back();
        return true;
    }
    bool end_object() override {
        // Move the members in at once, into storage reserved to fit: ordered_map
        // (a vector of pair<const key, value>) copies its values when it grows,
        // which would deep-copy (and recurse through) every nested value.
        Frame &f = frames_.back();
        auto &members =
            static_cast<Json::object_t::Container &>(*f.node->get_ptr<Json::object_t *>());
        members.reserve(f.members.size());
        for (auto &[k, v] : f.members) members.emplace_back(std::move(k), std::move(v));
        frames_.pop_back();
        return true;
    }

    bool key(string_t &k) override {
        Frame &f = frames_.back();
        auto [it, fresh] = f.index.emplace(k, f.members.size());
        if (fresh) {
            f.members.emplace_back(k, nullptr);
        } else {
            errors_.push_back(file_ + ": " + show(pointer_to(k)) +
                              ": expected each key once in an object; got " + describe(Json(k)) +
                              " again");
        }
        f.pending = it->second;  // a repeated key overwrites, as with nlohmann
        f.key = std::move(k);
        return true;
    }

    bool parse_error(std::size_t position, const std::string &,
                     const nlohmann::detail::exception &ex) override {
        error_position_ = position;
        error_what_ = ex.what();
        return false;
    }

    std::size_t error_position() const { return error_position_; }
    const std::string &error_what() const { return error_what_; }

private:
    // A container being read. Frames live in a deque so they never move: a
    // child frame's node points into its parent frame's members.
    struct Frame {
        Json *node;                                          // an object or an array
        std::string key;                                     // objects: the key being read
        std::size_t pending = 0;                             // objects: its index in members
        std::vector<std::pair<std::string, Json>> members;   // objects: moved into node at the end
        std::unordered_map<std::string, std::size_t> index;  // objects: key -> index in members
    };

    static std::string show(const std::string &p) { return p.empty() ? "/" : p; }

    // Where the next value goes: the root, the end of an array, or the pending key.
    Json *slot() {
        if (frames_.empty()) return &root_;
        Frame &f = frames_.back();
        if (f.node->is_array()) {
            f.node->push_back(nullptr);
            return &f.node->back();
        }
        return &f.members[f.pending].second;
    }
    bool put(Json v) {
        *slot() = std::move(v);
        return true;
    }
    bool push(Json container) {
        Json *node = slot();
        *node = std::move(container);
        frames_.push_back(Frame{node, {}, 0, {}, {}});
        return true;
    }

    // The pointer of key K in the innermost object being read.
    std::string pointer_to(const std::string &k) const {
        std::string p;
        for (std::size_t i = 0; i + 1 < frames_.size(); ++i) {
            const Frame &f = frames_[i];
            // Below the top, an array's element in progress is its last one.
            p = f.node->is_array() ? child_pointer(p, f.node->size() - 1) : child_pointer(p, f.key);
        }
        return child_pointer(p, k);
    }

    Json &root_;
    const std::string &file_;
    std::vector<std::string> &errors_;
    std::deque<Frame> frames_;
    std::size_t error_position_ = 0;
    std::string error_what_;
};

// Cuts S to at most N bytes without splitting a UTF-8 sequence.
std::string_view utf8_prefix(std::string_view s, std::size_t n) {
    if (s.size() <= n) return s;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
    return s.substr(0, n);
}

// S with bytes that are not valid UTF-8 shown as \xNN: nlohmann quotes the
// text it stopped at, which may be anything.
std::string printable(const std::string &s) {
    std::string out;
    for (std::size_t i = 0; i < s.size();) {
        auto c = static_cast<unsigned char>(s[i]);
        std::size_t len = c < 0x80           ? 1
                          : (c >> 5) == 0x6  ? 2
                          : (c >> 4) == 0xE  ? 3
                          : (c >> 3) == 0x1E ? 4
                                             : 0;
        bool ok = len > 0 && i + len <= s.size() && (c >= 0x20 || len > 1) && c != 0x7f;
        for (std::size_t j = 1; ok && j < len; ++j)
            ok = (static_cast<unsigned char>(s[i + j]) & 0xC0) == 0x80;
        if (ok) {
            out.append(s, i, len);
            i += len;
        } else {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02X", static_cast<unsigned>(c));
            out += buf;
            ++i;
        }
    }
    return out;
}

// nlohmann's message without its "[json.exception...] parse error at line L,
// column C: syntax error while parsing X - " prefixes: we give our own position.
std::string syntax_message(std::string what) {
    if (what.rfind("[json.exception.", 0) == 0) {
        auto close = what.find("] ");
        if (close != std::string::npos) what.erase(0, close + 2);
    }
    if (what.rfind("parse error", 0) == 0) {
        auto colon = what.find(": ");
        if (colon != std::string::npos) what.erase(0, colon + 2);
    }
    if (what.rfind("syntax error while parsing ", 0) == 0) {
        auto dash = what.find(" - ");
        if (dash != std::string::npos) what.erase(0, dash + 3);
    }
    if (what.size() > kMaxMessage) what = std::string(utf8_prefix(what, kMaxMessage)) + "...";
    return printable(what);
}

// Appends V to OUT like dump() would, but stops descending once OUT holds more
// than BUDGET bytes: a value nested 100,000 deep costs at most BUDGET levels.
void describe_into(const Json &v, std::string &out, std::size_t budget) {
    if (out.size() > budget) return;
    switch (v.type()) {
        case Json::value_t::object: {
            out += '{';
            bool first = true;
            for (const auto &[k, item] : v.items()) {
                if (out.size() > budget) break;
                if (!first) out += ',';
                first = false;
                out += Json(std::string(utf8_prefix(k, budget)))
                           .dump(-1, ' ', false, Json::error_handler_t::replace);
                out += ':';
                describe_into(item, out, budget);
            }
            out += '}';
            break;
        }
        case Json::value_t::array: {
            out += '[';
            bool first = true;
            for (const auto &item : v) {
                if (out.size() > budget) break;
                if (!first) out += ',';
                first = false;
                describe_into(item, out, budget);
            }
            out += ']';
            break;
        }
        case Json::value_t::string: {
            // Cut before dumping: a megabyte string need not be escaped whole.
            const auto &s = v.get_ref<const std::string &>();
            out += Json(std::string(utf8_prefix(s, budget + 1)))
                       .dump(-1, ' ', false, Json::error_handler_t::replace);
            break;
        }
        case Json::value_t::binary:  // never produced by JSON text
            out += "<binary>";
            break;
        default:  // numbers, booleans, null: short, and dump() is exact for them
            out += v.dump();
            break;
    }
}

}  // namespace

// strict: text after the document is an error too.
Document parse_document(std::string_view text, const std::string &file) {
    Document doc;
    Builder builder(doc.root, file, doc.errors);
    bool ok = false;
    try {
        // Comments (// and /* */) are skipped like white space.
        ok = Json::sax_parse(text.begin(), text.end(), &builder, Json::input_format_t::json, true,
                             true);
    } catch (const std::exception &) {
        // Not expected (our SAX handler returns false instead), but stay total.
        ok = false;
    }
    if (!ok) {
        // The position counts bytes read, the offending one included.
        std::size_t offset = builder.error_position() > 0 ? builder.error_position() - 1 : 0;
        auto [line, col] = line_column(text, offset);
        std::string what = builder.error_what().empty() ? std::string("invalid JSON")
                                                        : syntax_message(builder.error_what());
        doc.errors.clear();
        doc.errors.push_back(file + ":" + std::to_string(line) + ":" + std::to_string(col) +
                             ": syntax error: " + what);
        doc.syntax_error = true;
        doc.root = nullptr;
    }
    return doc;
}

// Columns count bytes, as nlohmann's offsets do; an offset past the end (end of
// input) lands just after the last character.
std::pair<std::size_t, std::size_t> line_column(std::string_view text, std::size_t offset) {
    offset = std::min(offset, text.size());
    std::size_t line = 1, line_start = 0;
    for (std::size_t i = 0; i < offset; ++i) {
        if (text[i] == '\n') {
            ++line;
            line_start = i + 1;
        }
    }
    return {line, offset - line_start + 1};
}

// The cut may leave a container unclosed; "..." says so.
std::string describe(const Json &v, std::size_t budget) {
    std::string out;
    describe_into(v, out, budget);
    if (out.size() > budget) {
        out = std::string(utf8_prefix(out, budget));
        out += "...";
    }
    return out;
}

std::string pointer_token(std::string_view key) {
    constexpr std::size_t kMaxToken = 100;
    std::string out;
    for (char c : utf8_prefix(key, kMaxToken)) {
        if (c == '~') {
            out += "~0";
        } else if (c == '/') {
            out += "~1";
        } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
            // Keep every message on one line; such keys are wrong anyway.
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x",
                          static_cast<unsigned>(static_cast<unsigned char>(c)));
            out += buf;
        } else {
            out += c;
        }
    }
    if (key.size() > kMaxToken) out += "...";
    return out;
}

std::string child_pointer(const std::string &pointer, std::string_view key) {
    return pointer + "/" + pointer_token(key);
}

std::string child_pointer(const std::string &pointer, std::size_t index) {
    return pointer + "/" + std::to_string(index);
}

}  // namespace chip::spec
