// Keeps config/chip.schema.json and the spec loader in step: the examples pass
// both, invalid specs fail both, and the keys, enums and limits are the same.
// The schema is checked with a small validator of exactly the JSON Schema
// keywords the schema uses; a keyword it does not know fails the test, so the
// schema cannot drift into keywords nobody checks here.
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12 reports a false "may be used uninitialized" inside std::regex's
// std::function when built with -fsanitize=address (libstdc++ PR 105562 family).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "spec/loader.hpp"

using nlohmann::json;
namespace fs = std::filesystem;
namespace spec = chip::spec;

namespace {

const fs::path kConfig = fs::path(CHIP_SOURCE_ROOT) / "config";

// Spec files may hold comments; so may the schema's examples.
json read_json(const fs::path &path) {
    std::ifstream in(path);
    REQUIRE(in.good());
    return json::parse(in, nullptr, true, true);
}

const json &schema() {
    static const json s = read_json(kConfig / "chip.schema.json");
    return s;
}

// Code points in a UTF-8 string, for minLength.
std::size_t code_points(const std::string &s) {
    return static_cast<std::size_t>(std::count_if(
        s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

// A JSON Schema (draft 2020-12) validator for the keywords the schema uses.
class Validator {
public:
    explicit Validator(const json &root) : root_(root) {}

    // The failures of INSTANCE, each "POINTER: what"; empty when it is valid.
    std::vector<std::string> validate(const json &instance) const {
        std::vector<std::string> errors;
        check(root_, instance, "", errors);
        return errors;
    }

    // Annotations and keywords that only hold subschemas for $ref.
    static bool ignored(const std::string &k) {
        return k == "$schema" || k == "$id" || k == "title" || k == "description" || k == "$defs";
    }
    static bool known(const std::string &k) {
        static const std::set<std::string> keywords{
            "$ref",     "type",        "properties", "required", "additionalProperties",
            "items",    "prefixItems", "enum",       "const",    "oneOf",
            "anyOf",    "not",         "minimum",    "maximum",  "exclusiveMinimum",
            "minItems", "maxItems",    "minLength",  "pattern",  "propertyNames"};
        return ignored(k) || keywords.count(k) > 0;
    }

    const json &resolve(const std::string &ref) const {
        REQUIRE_MESSAGE(ref.rfind("#/", 0) == 0, "only local $refs: " << ref);
        return root_.at(json::json_pointer(ref.substr(1)));
    }

private:
    static bool has_type(const json &v, const std::string &type) {
        if (type == "object") return v.is_object();
        if (type == "array") return v.is_array();
        if (type == "string") return v.is_string();
        if (type == "integer") return v.is_number_integer();  // as strict as the loader: 2.0 is not
        if (type == "number") return v.is_number();
        if (type == "boolean") return v.is_boolean();
        if (type == "null") return v.is_null();
        FAIL("unknown type " << type);
        return false;
    }

    void check(const json &s, const json &v, const std::string &ptr,
               std::vector<std::string> &errors) const {
        if (s.is_boolean()) {
            if (!s.get<bool>()) errors.push_back(ptr + ": false schema");
            return;
        }
        auto fail = [&](const std::string &what) {
            errors.push_back((ptr.empty() ? "/" : ptr) + ": " + what);
        };
        for (const auto &item : s.items()) {
            // Named copies: clang 14 cannot capture structured bindings in doctest's lambdas.
            const std::string k = item.key();
            const json &sub = item.value();
            REQUIRE_MESSAGE(
                known(k), "the schema uses a keyword the test validator does not implement: " << k);
            if (k == "$ref") {
                check(resolve(sub.get<std::string>()), v, ptr, errors);
            } else if (k == "type") {
                bool any = false;
                if (sub.is_array()) {
                    for (const auto &t : sub) any = any || has_type(v, t.get<std::string>());
                } else {
                    any = has_type(v, sub.get<std::string>());
                }
                if (!any) fail("type " + sub.dump());
            } else if (k == "enum") {
                if (std::find(sub.begin(), sub.end(), v) == sub.end()) fail("enum");
            } else if (k == "const") {
                if (v != sub) fail("const");
            } else if (k == "minimum") {
                if (v.is_number() && v.get<double>() < sub.get<double>()) fail("minimum");
            } else if (k == "maximum") {
                if (v.is_number() && v.get<double>() > sub.get<double>()) fail("maximum");
            } else if (k == "exclusiveMinimum") {
                if (v.is_number() && v.get<double>() <= sub.get<double>()) fail("exclusiveMinimum");
            } else if (k == "minItems") {
                if (v.is_array() && v.size() < sub.get<std::size_t>()) fail("minItems");
            } else if (k == "maxItems") {
                if (v.is_array() && v.size() > sub.get<std::size_t>()) fail("maxItems");
            } else if (k == "minLength") {
                if (v.is_string() && code_points(v.get<std::string>()) < sub.get<std::size_t>())
                    fail("minLength");
            } else if (k == "pattern") {
                if (v.is_string() &&
                    !std::regex_search(v.get<std::string>(), std::regex(sub.get<std::string>())))
                    fail("pattern " + sub.get<std::string>());
            } else if (k == "required") {
                if (v.is_object())
                    for (const auto &name : sub)
                        if (!v.contains(name.get<std::string>()))
                            fail("required " + name.get<std::string>());
            } else if (k == "properties") {
                if (v.is_object())
                    for (const auto &[name, item] : v.items())
                        if (sub.contains(name)) check(sub[name], item, ptr + "/" + name, errors);
            } else if (k == "additionalProperties") {
                if (v.is_object())
                    for (const auto &[name, item] : v.items())
                        if (!s.contains("properties") || !s["properties"].contains(name))
                            check(sub, item, ptr + "/" + name, errors);
            } else if (k == "propertyNames") {
                if (v.is_object())
                    for (const auto &[name, item] : v.items())
                        check(sub, json(name), ptr + "/" + name, errors);
            } else if (k == "items") {
                // After the prefixItems, when there are some (draft 2020-12).
                std::size_t first = s.contains("prefixItems") ? s["prefixItems"].size() : 0;
                if (v.is_array())
                    for (std::size_t i = first; i < v.size(); ++i)
                        check(sub, v[i], ptr + "/" + std::to_string(i), errors);
            } else if (k == "prefixItems") {
                if (v.is_array())
                    for (std::size_t i = 0; i < v.size() && i < sub.size(); ++i)
                        check(sub[i], v[i], ptr + "/" + std::to_string(i), errors);
            } else if (k == "oneOf" || k == "anyOf") {
                std::size_t passed = 0;
                for (const auto &alternative : sub) {
                    std::vector<std::string> sub_errors;
                    check(alternative, v, ptr, sub_errors);
                    passed += sub_errors.empty();
                }
                if (k == "oneOf" ? passed != 1 : passed == 0)
                    fail(k + " (" + std::to_string(passed) + " passed)");
            } else if (k == "not") {
                std::vector<std::string> sub_errors;
                check(sub, v, ptr, sub_errors);
                if (sub_errors.empty()) fail("not");
            }
        }
    }

    const json &root_;
};

// Every subschema of S, to check the keywords used even where no test instance reaches.
void each_schema(const json &s, const std::function<void(const json &)> &f) {
    if (!s.is_object()) return;
    f(s);
    for (const char *k : {"items", "additionalProperties", "not", "propertyNames"})
        if (s.contains(k)) each_schema(s[k], f);
    for (const char *k : {"properties", "$defs"})
        if (s.contains(k))
            for (const auto &[name, sub] : s[k].items()) each_schema(sub, f);
    for (const char *k : {"oneOf", "anyOf", "prefixItems"})
        if (s.contains(k))
            for (const auto &sub : s[k]) each_schema(sub, f);
}

bool loader_accepts(const std::string &text, std::string *errors = nullptr) {
    try {
        spec::load_string(text, "t.json", "/tmp");
        return true;
    } catch (const spec::SpecError &e) {
        if (errors) *errors = e.what();
        return false;
    }
}

std::vector<std::string> property_names(const json &s) {
    std::vector<std::string> names;
    for (const auto &[name, sub] : s.at("properties").items()) names.push_back(name);
    std::sort(names.begin(), names.end());
    return names;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
}

std::string worker(const std::string &fields, const std::string &top = "") {
    return "{" + top + R"("root": {"children": [{"name": "w", "command": ["prog"])" +
           (fields.empty() ? "" : ", " + fields) + "}]}}";
}

const json &output_object_schema() {
    return schema().at("$defs").at("output").at("anyOf").at(1);
}

}  // namespace

TEST_CASE("the schema uses only keywords the test validator implements") {
    std::size_t count = 0;
    each_schema(schema(), [&](const json &s) {
        ++count;
        for (const auto &item : s.items()) {
            const std::string k = item.key();
            CHECK_MESSAGE(Validator::known(k), "unknown keyword " << k);
        }
    });
    CHECK(count > 20);
    CHECK(schema().at("$schema") == "https://json-schema.org/draft/2020-12/schema");
}

TEST_CASE("every $ref in the schema resolves") {
    Validator validator(schema());
    each_schema(schema(), [&](const json &s) {
        if (s.contains("$ref")) CHECK_NOTHROW(validator.resolve(s["$ref"].get<std::string>()));
    });
}

TEST_CASE("every example spec passes the schema and the loader") {
    Validator validator(schema());
    std::size_t examples = 0;
    for (const auto &entry : fs::directory_iterator(kConfig)) {
        if (entry.path().extension() != ".json" || entry.path().filename() == "chip.schema.json")
            continue;
        ++examples;
        INFO(entry.path().string());
        auto errors = validator.validate(read_json(entry.path()));
        CHECK_MESSAGE(errors.empty(), (errors.empty() ? "" : errors[0]));
        CHECK_NOTHROW(spec::load_file(entry.path().string()));
    }
    CHECK(examples >= 3);
}

TEST_CASE("valid specs pass the schema and the loader") {
    Validator validator(schema());
    const std::vector<std::string> valid{
        R"({"root": {}})",
        R"({"root": {"strategy": "one_for_all", "max_restarts": 0, "period": 0.5, "children": []}})",
        R"({"registries": ["a", {"name": "b:c", "max_groups": 1, "max_members": 16777216}], "root": {}, "socket": "x.sock"})",
        R"({"root": {}, "socket": {"path": "x.sock", "group": "0", "mode": "0640"}})",
        R"({"root": {}, "socket": {"mode": "600"}})",
        R"({"root": {}, "socket": {}})",
        worker(
            R"("restart": "temporary", "instances": 100000, "env": {"A": "", "B_2": "x=y"}, "cwd": "/",
                  "ready": "notify", "start_timeout": 1e-3, "stop_signal": "SIGINT", "stop_timeout": 0,
                  "join": {"r": ["g", "h:1"]}, "stdout": "null", "stderr": "inherit")",
            R"("registries": ["r"], )"),
        worker(R"("stop_signal": 9)"),
        worker(R"("stop_signal": "15")"),
        worker(R"("stop_signal": "KILL")"),
        worker(
            R"("stdout": {"file": "/tmp/chip-schema-test.log", "max_bytes": 4096, "keep": 1000})"),
        R"({"root": {"children": [{"name": "s", "supervisor": {"children": [{"name": "w", "command": ["x"]}]}}]}})",
        worker(R"("backoff": {"initial": 0.2})"),
        worker(
            R"("backoff": {"initial": 1, "max": 1, "factor": 1, "jitter": 0, "reset_after": 1e-3})"),
        worker(R"("backoff": {"initial": 0.5, "max": 60, "factor": 3.5, "jitter": 1})"),
        R"({"root": {"backoff": {"initial": 1}, "children": [{"name": "s", "backoff": {"initial": 2}, "supervisor": {}}]}})",
        R"({"root": {"children": [{"name": "w", "command": ["redis-server", "--save", ""]}]}})",
        worker(R"("start": false)"),
        R"({"root": {"children": [{"name": "s", "start": true, "supervisor": {}}]}})",
        R"({"root": {"children": [{"include": "/nonexistent-chip-dir/*.json"}]}})",
        R"({"root": {}, "cluster": {"etcd": ["http://127.0.0.1:2379"], "name": "prod", "node": "a"}})",
        R"({"root": {}, "cluster": {"etcd": ["https://etcd-1.example:2379/", "http://[::1]:2379"], "name": "p:1", "node": "host-a.b", "lease_ttl": 2}})",
        R"({"root": {}, "cluster": {"etcd": ["http://e"], "name": "p", "node": "n", "lease_ttl": 3600, "tls": {"ca": "/etc/hostname"}}})",
    };
    for (const auto &text : valid) {
        INFO(text);
        auto errors = validator.validate(json::parse(text));
        CHECK_MESSAGE(errors.empty(), (errors.empty() ? "" : errors[0]));
        std::string loader_errors;
        CHECK_MESSAGE(loader_accepts(text, &loader_errors), loader_errors);
    }
}

TEST_CASE("invalid specs fail the schema and the loader alike") {
    Validator validator(schema());
    const std::vector<std::string> invalid{
        "[]",
        R"({})",
        R"({"root": {}, "extra": 1})",
        R"({"root": {"strategy": "one_for_none"}})",
        R"({"root": {"max_restarts": -1}})",
        R"({"root": {"max_restarts": 1.5}})",
        R"({"root": {"max_restarts": 1000001}})",
        R"({"root": {"period": 0}})",
        R"({"root": {"period": 1e10}})",
        R"({"root": {"children": {}}})",
        R"({"root": {"children": [{"name": "x"}]}})",
        R"({"root": {"children": [{"name": "x", "command": ["x"], "supervisor": {}}]}})",
        R"({"root": {"children": [{"command": ["x"]}]}})",
        R"({"root": {"children": [{"name": "a b", "command": ["x"]}]}})",
        R"({"root": {"children": [{"name": ".", "command": ["x"]}]}})",
        R"({"root": {"children": [{"name": "..", "supervisor": {}}]}})",
        R"({"root": {"children": [{"name": "s", "supervisor": {}, "restart": "permanent"}]}})",
        R"({"root": {}, "socket": {"mode": "1777"}})",
        R"({"root": {}, "socket": {"mode": "0o660"}})",
        R"({"root": {}, "socket": {"mode": 432}})",
        R"({"root": {}, "socket": {"mode": "00660"}})",
        R"({"root": {}, "socket": {"owner": "root"}})",
        R"({"root": {}, "socket": 5})",
        R"({"registries": "r", "root": {}})",
        R"({"registries": ["a b"], "root": {}})",
        R"({"registries": [{"name": "r", "max_groups": 0}], "root": {}})",
        R"({"registries": [{"name": "r", "max_members": 16777217}], "root": {}})",
        R"({"registries": [{"max_groups": 2}], "root": {}})",
        R"({"registries": [{"name": "r", "extra": 2}], "root": {}})",
        R"({"socket": "", "root": {}})",
        worker(R"("restat": "permanent")"),
        worker(R"("restart": "always")"),
        worker(R"("instances": -1)"),
        worker(R"("instances": 100001)"),
        worker(R"("instances": "2")"),
        worker(R"("env": {"A=B": "x"})"),
        worker(R"("env": {"": "x"})"),
        worker(R"("env": {"A": 1})"),
        worker(R"("cwd": "")"),
        worker(R"("ready": "yes")"),
        worker(R"("start_timeout": 0)"),
        worker(R"("stop_timeout": -1)"),
        worker(R"("stop_signal": "STOP")"),
        worker(R"("stop_signal": "SIGSTOP")"),
        worker(R"("stop_signal": 19)"),
        worker(R"("stop_signal": "19")"),
        worker(R"("stop_signal": 0)"),
        worker(R"("stop_signal": 65)"),
        worker(R"("stop_signal": "FOO")"),
        worker(R"("join": {"r": "g"})", R"("registries": ["r"], )"),
        worker(R"("join": {"r": ["a b"]})", R"("registries": ["r"], )"),
        worker(R"("join": {"r b": ["g"]})", R"("registries": ["r"], )"),
        worker(R"("stdout": "file")"),
        worker(R"("stdout": {"max_bytes": 5000})"),
        worker(R"("stdout": {"file": "/tmp/x.log", "max_bytes": 4095})"),
        worker(R"("stdout": {"file": "/tmp/x.log", "keep": 0})"),
        worker(R"("stdout": {"file": "/tmp/x.log", "keep": 1001})"),
        worker(R"("stderr": {"file": "/tmp/x.log", "rotate": true})"),
        worker(R"("user": "")"),
        R"({"root": {"children": [{"name": "w", "command": []}]}})",
        R"({"root": {"children": [{"name": "w", "command": [""]}]}})",
        R"({"root": {"children": [{"name": "w", "command": "prog"}]}})",
        worker(R"("backoff": 1)"),
        worker(R"("backoff": {})"),
        worker(R"("backoff": {"max": 5})"),
        worker(R"("backoff": {"initial": 0})"),
        worker(R"("backoff": {"initial": "1"})"),
        worker(R"("backoff": {"initial": 1, "max": 0})"),
        worker(R"("backoff": {"initial": 1, "factor": 0.5})"),
        worker(R"("backoff": {"initial": 1, "jitter": -0.1})"),
        worker(R"("backoff": {"initial": 1, "jitter": 1.5})"),
        worker(R"("backoff": {"initial": 1, "reset_after": 0})"),
        worker(R"("backoff": {"initial": 1, "delay": 2})"),
        R"({"root": {"backoff": {"initial": -1}}})",
        R"({"root": {"children": [{"name": "s", "backoff": {"inital": 1}, "supervisor": {}}]}})",
        R"({"root": {"children": [{"name": "w", "command": ["", "x"]}]}})",
        R"({"root": {"children": [{"name": "w", "command": ["x", 1]}]}})",
        worker(R"("start": "no")"),
        worker(R"("start": 0)"),
        R"({"root": {"start": false}})",
        R"({"root": {"children": [{"include": ""}]}})",
        R"({"root": {"children": [{"include": 5}]}})",
        R"({"root": {"children": [{"include": "/nonexistent-chip-dir/*.json", "name": "x"}]}})",
        R"({"root": {}, "cluster": []})",
        R"({"root": {}, "cluster": {"name": "p", "node": "n"}})",
        R"({"root": {}, "cluster": {"etcd": ["http://e:1"], "node": "n"}})",
        R"({"root": {}, "cluster": {"etcd": [], "name": "p", "node": "n"}})",
        R"({"root": {}, "cluster": {"etcd": "http://e:1", "name": "p", "node": "n"}})",
        R"({"root": {}, "cluster": {"etcd": ["e:2379"], "name": "p", "node": "n"}})",
        R"({"root": {}, "cluster": {"etcd": ["ftp://e:2379"], "name": "p", "node": "n"}})",
        R"({"root": {}, "cluster": {"etcd": ["http://e:2379/v3"], "name": "p", "node": "n"}})",
        R"({"root": {}, "cluster": {"etcd": ["http://"], "name": "p", "node": "n"}})",
        R"({"root": {}, "cluster": {"etcd": ["http://:2379"], "name": "p", "node": "n"}})",
        R"({"root": {}, "cluster": {"etcd": ["http://u@e:2379"], "name": "p", "node": "n"}})",
        R"({"root": {}, "cluster": {"etcd": ["http://e", "http://e", "http://e", "http://e", "http://e", "http://e", "http://e", "http://e", "http://e", "http://e", "http://e", "http://e", "http://e", "http://e", "http://e", "http://e", "http://e"], "name": "p", "node": "n"}})",
        R"({"root": {}, "cluster": {"etcd": ["http://e"], "name": "a/b", "node": "n"}})",
        R"({"root": {}, "cluster": {"etcd": ["http://e"], "name": "p", "node": "a b"}})",
        R"({"root": {}, "cluster": {"etcd": ["http://e"], "name": "p", "node": "n", "lease_ttl": 1}})",
        R"({"root": {}, "cluster": {"etcd": ["http://e"], "name": "p", "node": "n", "lease_ttl": 2.5}})",
        R"({"root": {}, "cluster": {"etcd": ["http://e"], "name": "p", "node": "n", "lease_ttl": 3601}})",
        R"({"root": {}, "cluster": {"etcd": ["http://e"], "name": "p", "node": "n", "tls": {}}})",
        R"({"root": {}, "cluster": {"etcd": ["http://e"], "name": "p", "node": "n", "tls": {"ca": ""}}})",
        R"({"root": {}, "cluster": {"etcd": ["http://e"], "name": "p", "node": "n", "tls": {"ca": "/etc/hostname", "pin": "x"}}})",
        R"({"root": {}, "cluster": {"etcd": ["http://e"], "name": "p", "node": "n", "extra": 1}})",
    };
    for (const auto &text : invalid) {
        INFO(text);
        CHECK_FALSE(validator.validate(json::parse(text)).empty());
        CHECK_FALSE(loader_accepts(text));
    }
}

TEST_CASE("the schema allows exactly the keys the loader accepts") {
    const json &defs = schema().at("$defs");
    CHECK(property_names(schema()) == sorted(spec::top_level_keys()));
    CHECK(property_names(defs.at("registry")) == sorted(spec::registry_keys()));
    CHECK(property_names(defs.at("supervisor")) == sorted(spec::supervisor_keys()));
    CHECK(property_names(defs.at("worker")) == sorted(spec::worker_keys()));
    CHECK(property_names(defs.at("supervisor_child")) == sorted(spec::supervisor_child_keys()));
    CHECK(property_names(output_object_schema()) == sorted(spec::output_keys()));
    CHECK(property_names(defs.at("backoff")) == sorted(spec::backoff_keys()));
    CHECK(property_names(defs.at("include")) == sorted(spec::include_keys()));
    CHECK(property_names(defs.at("socket")) == sorted(spec::socket_keys()));
    CHECK(property_names(defs.at("cluster")) == sorted(spec::cluster_keys()));
    const json &tls = defs.at("cluster").at("properties").at("tls");
    CHECK(property_names(tls) == sorted(spec::tls_keys()));
    for (const json *s :
         {&schema(), &defs.at("registry"), &defs.at("supervisor"), &defs.at("worker"),
          &defs.at("supervisor_child"), &output_object_schema(), &defs.at("backoff"),
          &defs.at("include"), &defs.at("socket"), &defs.at("cluster"), &tls})
        CHECK(s->at("additionalProperties") == false);
}

TEST_CASE("the schema's required keys are the loader's") {
    const json &defs = schema().at("$defs");
    CHECK(schema().at("required") == json{"root"});
    CHECK(defs.at("worker").at("required") == json{"name", "command"});
    CHECK(defs.at("supervisor_child").at("required") == json{"name", "supervisor"});
    CHECK(defs.at("registry").at("required") == json{"name"});
    CHECK(output_object_schema().at("required") == json{"file"});
    CHECK(defs.at("backoff").at("required") == json{"initial"});
    CHECK(defs.at("include").at("required") == json{"include"});
    CHECK(defs.at("cluster").at("required") == json{"etcd", "name"});
    CHECK(defs.at("cluster").at("properties").at("tls").at("required") == json{"ca"});
    CHECK_FALSE(loader_accepts(worker(R"("backoff": {"max": 1})")));
    CHECK_FALSE(loader_accepts(R"({"registries": []})"));
    CHECK_FALSE(loader_accepts(R"({"root": {"children": [{"name": "w"}]}})"));
    CHECK_FALSE(loader_accepts(R"({"registries": [{"max_groups": 1}], "root": {}})"));
    CHECK_FALSE(loader_accepts(worker(R"("stdout": {"keep": 2})")));
}

TEST_CASE("every enum value in the schema is accepted by the loader") {
    const json &defs = schema().at("$defs");
    for (const auto &s : defs.at("supervisor").at("properties").at("strategy").at("enum"))
        CHECK(loader_accepts(R"({"root": {"strategy": )" + s.dump() + "}}"));
    const json &w = defs.at("worker").at("properties");
    for (const char *field : {"restart", "ready"})
        for (const auto &value : w.at(field).at("enum"))
            CHECK(loader_accepts(worker("\"" + std::string(field) + "\": " + value.dump())));
    for (const auto &value : defs.at("output").at("anyOf").at(0).at("enum"))
        CHECK(loader_accepts(worker("\"stdout\": " + value.dump())));
}

TEST_CASE("every signal name the schema allows is accepted by the loader") {
    Validator validator(schema());
    std::string pattern = schema().at("$defs").at("signal").at("anyOf").at(0).at("pattern");
    auto open = pattern.find("(HUP");
    auto close = pattern.find(')', open);
    REQUIRE(open != std::string::npos);
    std::stringstream names(pattern.substr(open + 1, close - open - 1));
    std::size_t count = 0;
    for (std::string name; std::getline(names, name, '|');) {
        for (const std::string &written : {name, "SIG" + name}) {
            INFO(written);
            std::string text = worker(R"("stop_signal": ")" + written + "\"");
            CHECK(validator.validate(json::parse(text)).empty());
            CHECK(loader_accepts(text));
        }
        ++count;
    }
    CHECK(count == 29);  // every name chip::parse_signal knows, STOP excepted
    for (int n = 1; n <= 64; ++n) {
        std::string text = worker("\"stop_signal\": " + std::to_string(n));
        INFO(text);
        CHECK(validator.validate(json::parse(text)).empty() == (n != 19));
        CHECK(loader_accepts(text) == (n != 19));
    }
}

TEST_CASE("the schema's numeric limits are the loader's") {
    const json &defs = schema().at("$defs");
    const json &w = defs.at("worker").at("properties");
    CHECK(w.at("instances").at("maximum") == spec::kMaxInstances);
    CHECK(defs.at("supervisor").at("properties").at("max_restarts").at("maximum") ==
          spec::kMaxRestartsLimit);
    CHECK(defs.at("seconds").at("maximum") == spec::kMaxSeconds);
    CHECK(defs.at("seconds_positive").at("maximum") == spec::kMaxSeconds);
    CHECK(output_object_schema().at("properties").at("keep").at("maximum") == spec::kMaxKeep);
    CHECK(output_object_schema().at("properties").at("max_bytes").at("minimum") ==
          spec::kMinMaxBytes);
    CHECK(defs.at("registry").at("properties").at("max_groups").at("maximum") ==
          spec::kMaxGroupsLimit);
    CHECK(defs.at("registry").at("properties").at("max_members").at("maximum") ==
          spec::kMaxMembersLimit);
}

TEST_CASE("included files pass #/$defs/include_file and the loader") {
    // The schema's root, pointed at the definition of an included file.
    json s = schema();
    for (const char *k : {"type", "properties", "required", "additionalProperties"}) s.erase(k);
    s["$ref"] = "#/$defs/include_file";
    Validator validator(s);
    std::size_t files = 0;
    for (const auto &entry : fs::directory_iterator(kConfig / "site.d")) {
        ++files;
        INFO(entry.path().string());
        auto errors = validator.validate(read_json(entry.path()));
        CHECK_MESSAGE(errors.empty(), (errors.empty() ? "" : errors[0]));
    }
    CHECK(files >= 2);
    CHECK(validator.validate(json::parse(R"({"name": "w", "command": ["x"]})")).empty());
    CHECK(validator.validate(json::parse(R"([{"include": "more/*.json"}])")).empty());
    CHECK_FALSE(validator.validate(json::parse("5")).empty());
    CHECK_FALSE(validator.validate(json::parse(R"([{"name": "w"}])")).empty());
    CHECK_NOTHROW(spec::load_file((kConfig / "site.json").string()));
}
