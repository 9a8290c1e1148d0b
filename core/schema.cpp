// JSON Schema compilation and body validation (see schema.hpp for the subset and
// the choices). The body is parsed by nlohmann's SAX parser into an ordered DOM
// built here (so a hostile body cannot nest past max_depth, and keys keep their
// order for the error list); the schema tree is plain data indexed by int, so
// recursive schemas ($ref cycles) need no pointers and the tree is immutable.
#include "schema.hpp"

#include <algorithm>
#include <charconv>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <regex>
#include <unordered_map>
#include <utility>

namespace ql {

using J = nlohmann::ordered_json;

// ---------------------------------------------------------------- helpers

namespace validation {

size_t code_points(std::string_view s) {
    size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
}

std::string py_repr(std::string_view s) {
    char q = s.find('\'') != std::string_view::npos && s.find('"') == std::string_view::npos ? '"' : '\'';
    std::string out(1, q);
    for (char c : s) {
        if (c == q || c == '\\') out.push_back('\\');
        out.push_back(c);
    }
    out.push_back(q);
    return out;
}

void append_json_string(std::string &out, std::string_view s) {
    static const char hex[] = "0123456789abcdef";
    out.push_back('"');
    size_t run = 0;  // start of the pending run of bytes that need no escape
    for (size_t i = 0; i < s.size(); ++i) {
        // Eight bytes at a time while none is a control byte, '"' or '\\'.
        constexpr uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
        while (i + 8 <= s.size()) {
            uint64_t x;
            std::memcpy(&x, s.data() + i, 8);
            uint64_t quote = x ^ (ones * '"'), slash = x ^ (ones * '\\');
            uint64_t hit = ((x - ones * 0x20) & ~x) | ((quote - ones) & ~quote) | ((slash - ones) & ~slash);
            if (hit & highs) break;
            i += 8;
        }
        if (i >= s.size()) break;
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        out.append(s.data() + run, i - run);
        run = i + 1;
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
            out += "\\u00";
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 15]);
        }
    }
    out.append(s.data() + run, s.size() - run);
    out.push_back('"');
}

static bool is_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool parse_uuid(std::string_view s, std::string *why) {
    std::string_view body = s;
    if (body.size() >= 9 && (body.substr(0, 9) == "urn:uuid:")) body.remove_prefix(9);
    else if (body.size() >= 2 && body.front() == '{' && body.back() == '}') body = body.substr(1, body.size() - 2);
    if (body.size() == 32) {
        for (size_t i = 0; i < 32; ++i)
            if (!is_hex(body[i])) {
                if (why) *why = "invalid character: expected [0-9a-fA-F], found `" + std::string(1, body[i]) +
                                "` at " + std::to_string(i + 1);
                return false;
            }
        return true;
    }
    if (body.size() != 36) {
        if (why) *why = "invalid length: expected length 32 for simple format, found " + std::to_string(body.size());
        return false;
    }
    for (size_t i = 0; i < 36; ++i) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? body[i] != '-' : !is_hex(body[i])) {
            if (why)
                *why = "invalid character: expected an optional prefix of `urn:uuid:` followed by [0-9a-fA-F-], found `" +
                       std::string(1, body[i]) + "` at " + std::to_string(i + 1);
            return false;
        }
    }
    return true;
}

struct Pattern::Impl {
    std::regex re;
};

Pattern::Pattern() = default;
Pattern::~Pattern() = default;

std::unique_ptr<const Pattern> Pattern::compile(std::string_view source, std::string *err) {
    auto flags = std::regex::ECMAScript;
#if defined(__GLIBCXX__)
    // Breadth-first (Thompson) matching: time and stack linear in the input.
    // It refuses back-references, which a linear matcher cannot do.
    flags |= std::regex_constants::__polynomial;
#endif
    std::unique_ptr<Pattern> p(new Pattern());
    p->impl_ = std::make_unique<Impl>();
    p->source_ = std::string(source);
    try {
        // Compile the pattern alone first, so an unbalanced ")" cannot pair with
        // the wrapper's parentheses.
        std::regex alone(p->source_, flags);
        (void)alone;
        // JSON Schema patterns are unanchored: search = full match of .*(?:P).*,
        // one left-to-right pass instead of a match attempt per start position.
        p->impl_->re = std::regex("[\\s\\S]*(?:" + p->source_ + ")[\\s\\S]*", flags);
    } catch (const std::regex_error &e) {
        if (err) *err = std::string("invalid regular expression: ") + e.what();
        return nullptr;
    }
    return p;
}

bool Pattern::search(std::string_view s) const {
    return std::regex_match(s.begin(), s.end(), impl_->re);
}

}  // namespace validation

void append_error_json(std::string &out, const ValidationError &e) {
    out += "{\"type\":";
    validation::append_json_string(out, e.type);
    out += ",\"loc\":";
    out += e.loc;
    out += ",\"msg\":";
    validation::append_json_string(out, e.msg);
    if (!e.input.empty()) {
        out += ",\"input\":";
        out += e.input;
    }
    if (!e.ctx.empty()) {
        out += ",\"ctx\":";
        out += e.ctx;
    }
    out.push_back('}');
}

std::string render_detail(std::span<const ValidationError> errors) {
    size_t want = 16;
    for (const ValidationError &e : errors)
        want += 48 + e.type.size() + e.loc.size() + e.msg.size() + e.input.size() + e.ctx.size();
    std::string out;
    out.reserve(want);
    out = "{\"detail\":[";
    for (size_t i = 0; i < errors.size(); ++i) {
        if (i) out.push_back(',');
        append_error_json(out, errors[i]);
    }
    out += "]}";
    return out;
}

namespace {

std::string dump(const J &j) {
    // Scalars without nlohmann's serializer (a locale lookup and a buffer per
    // call): the same text, as strings in the DOM are valid UTF-8 already.
    std::string out;
    switch (j.type()) {
    case J::value_t::null: out = "null"; break;
    case J::value_t::boolean: out = j.get<bool>() ? "true" : "false"; break;
    case J::value_t::string: validation::append_json_string(out, j.get_ref<const std::string &>()); break;
    case J::value_t::number_integer:
    case J::value_t::number_unsigned: {
        char buf[24];
        auto res = j.is_number_unsigned() ? std::to_chars(buf, buf + sizeof buf, j.get<uint64_t>())
                                          : std::to_chars(buf, buf + sizeof buf, j.get<int64_t>());
        out.assign(buf, res.ptr);
        break;
    }
    default: out = j.dump(-1, ' ', false, J::error_handler_t::replace);
    }
    return out;
}

// Python's repr of a JSON value, as pydantic prints literals: 'a', 1, True, None.
std::string py_repr(const J &v) {
    if (v.is_string()) return validation::py_repr(v.get_ref<const std::string &>());
    if (v.is_boolean()) return v.get<bool>() ? "True" : "False";
    if (v.is_null()) return "None";
    return dump(v);
}

// "'a', 'b' or 'c'"
std::string expected_list(const std::vector<J> &values) {
    std::string out;
    for (size_t i = 0; i < values.size(); ++i) {
        if (i) out += i + 1 == values.size() ? " or " : ", ";
        out += py_repr(values[i]);
    }
    return out;
}

std::string ptr_join(const std::string &ptr, std::string_view token) {
    std::string out = ptr;
    out.push_back('/');
    for (char c : token) {
        if (c == '~') out += "~0";
        else if (c == '/') out += "~1";
        else out.push_back(c);
    }
    return out;
}

std::string ptr_join(const std::string &ptr, size_t index) { return ptr + "/" + std::to_string(index); }

enum TypeBits : uint8_t {
    T_NULL = 1,
    T_BOOL = 2,
    T_INT = 4,
    T_NUM = 8,  // any number (integers included)
    T_STR = 16,
    T_ARR = 32,
    T_OBJ = 64,
};

struct Bound {
    bool set = false;
    long double v = 0;
    std::string text;  // as written in the schema: 0, 0.5
};

long double num_of(const J &v) {
    switch (v.type()) {
    case J::value_t::number_integer: return static_cast<long double>(v.get<int64_t>());
    case J::value_t::number_unsigned: return static_cast<long double>(v.get<uint64_t>());
    default: return static_cast<long double>(v.get<double>());
    }
}

bool is_integral(const J &v) {
    if (v.is_number_integer()) return true;  // signed or unsigned
    if (!v.is_number_float()) return false;
    double d = v.get<double>();
    return std::isfinite(d) && std::trunc(d) == d;
}

// "/$defs/Name" or "/definitions/Name"
bool is_def_entry(const std::string &ptr) {
    for (std::string_view pre : {std::string_view("/$defs/"), std::string_view("/definitions/")})
        if (ptr.size() > pre.size() && std::string_view(ptr).substr(0, pre.size()) == pre &&
            ptr.find('/', pre.size()) == std::string::npos)
            return true;
    return false;
}

// JSON equality for enum/const: numbers by value (1 == 1.0), objects regardless of
// key order (ordered_json's operator== would compare the order too).
bool json_equal(const J &a, const J &b) {
    if (a.is_number() && b.is_number()) return num_of(a) == num_of(b);
    if (a.type() != b.type()) return false;
    switch (a.type()) {
    case J::value_t::array: {
        if (a.size() != b.size()) return false;
        for (size_t i = 0; i < a.size(); ++i)
            if (!json_equal(a[i], b[i])) return false;
        return true;
    }
    case J::value_t::object: {
        const auto &oa = a.get_ref<const J::object_t &>();
        const auto &ob = b.get_ref<const J::object_t &>();
        if (oa.size() != ob.size()) return false;
        for (const auto &[k, v] : oa) {
            const J *other = nullptr;
            for (auto it = ob.rbegin(); it != ob.rend(); ++it)
                if (it->first == k) {
                    other = &it->second;
                    break;
                }
            if (!other || !json_equal(v, *other)) return false;
        }
        return true;
    }
    default: return a == b;
    }
}

}  // namespace

// ---------------------------------------------------------------- the tree

struct Schema::Node {
    bool never = false;   // the false schema
    bool pure_null = false;  // exactly {"type":"null"}
    uint8_t types = 0;    // 0: any type
    std::string title;
    std::string label;    // union branch tag in loc

    // enum / const
    bool has_enum = false;
    bool enum_named = false;  // an Enum class (a $defs entry): pydantic type "enum"
    std::vector<J> enum_values;
    std::string enum_expected;

    // strings
    bool has_min_len = false, has_max_len = false;
    size_t min_len = 0, max_len = 0;
    std::unique_ptr<const validation::Pattern> pattern;
    bool fmt_uuid = false;

    // numbers
    Bound minimum, maximum, xminimum, xmaximum, multiple_of;

    // arrays
    bool has_min_items = false, has_max_items = false;
    size_t min_items = 0, max_items = 0;
    int items = -1;
    bool items_false = false;
    bool unique_items = false;
    std::vector<int> prefix_items;

    // objects
    struct Prop {
        std::string name;
        int node;
        bool required;
    };
    bool has_properties = false;
    std::vector<Prop> props;                 // schema order
    std::vector<uint32_t> props_by_name;     // indexes into props, sorted by name
    std::vector<std::string> required_extra; // required names without a properties entry
    struct PatternProp {
        std::unique_ptr<const validation::Pattern> pattern;
        int node;
    };
    std::vector<PatternProp> pattern_props;  // patternProperties, schema order
    int additional = -1;
    bool additional_false = false;
    bool has_min_props = false, has_max_props = false;
    size_t min_props = 0, max_props = 0;

    // applicators on the same value
    int ref = -1;
    std::vector<int> all_of, any_of, one_of;
};

struct Schema::Impl {
    std::vector<Node> nodes;
    int root = -1;
    SchemaOptions opts;
};

Schema::Schema() = default;
Schema::~Schema() = default;

namespace {

using Node = Schema::Node;

const char *const kRefused[] = {
    "not", "if", "then", "else", "dependentRequired", "dependentSchemas", "dependencies",
    "propertyNames", "unevaluatedProperties", "unevaluatedItems", "contains",
    "minContains", "maxContains", "$dynamicRef", "$dynamicAnchor",
    "$recursiveRef", "$recursiveAnchor", "contentSchema",
};

struct Compiler {
    const J &root;
    std::vector<Node> &nodes;
    std::unordered_map<std::string, int> memo;  // JSON pointer -> node
    std::string err;

    bool fail(const std::string &ptr, const std::string &msg) {
        if (err.empty()) err = "schema " + (ptr.empty() ? std::string("(root)") : ptr) + ": " + msg;
        return false;
    }

    bool nonneg(const J &v, const std::string &ptr, size_t &out) {
        if (!v.is_number() || !is_integral(v)) return fail(ptr, "expected a non-negative integer");
        if (v.is_number_integer() && !v.is_number_unsigned() && v.get<int64_t>() < 0)
            return fail(ptr, "expected a non-negative integer, got " + dump(v));
        if (v.is_number_float() && v.get<double>() < 0) return fail(ptr, "expected a non-negative integer, got " + dump(v));
        long double d = num_of(v);
        out = d > static_cast<long double>(SIZE_MAX / 2) ? SIZE_MAX / 2 : static_cast<size_t>(d);
        return true;
    }

    bool number(const J &v, const std::string &ptr, Bound &out, bool draft4_hint = false) {
        if (!v.is_number()) {
            if (draft4_hint && v.is_boolean())
                return fail(ptr, "expected a number (the draft-04 boolean form is not supported; "
                                 "write \"exclusiveMinimum\": <number>)");
            return fail(ptr, "expected a number");
        }
        if (v.is_number_float() && !std::isfinite(v.get<double>())) return fail(ptr, "expected a finite number");
        out.set = true;
        out.v = num_of(v);
        out.text = dump(v);
        return true;
    }

    // Resolves a local reference "#/a/b" to a canonical pointer and the target.
    const J *resolve(const std::string &ref, const std::string &ptr, std::string &canonical) {
        if (ref.empty() || ref[0] != '#') {
            fail(ptr, "only local references (\"#/$defs/Name\") are supported, got \"" + ref + "\"");
            return nullptr;
        }
        std::string frag;  // percent-decoded fragment
        for (size_t i = 1; i < ref.size(); ++i) {
            if (ref[i] == '%' && i + 2 < ref.size() &&
                std::isxdigit(static_cast<unsigned char>(ref[i + 1])) &&
                std::isxdigit(static_cast<unsigned char>(ref[i + 2]))) {
                frag.push_back(static_cast<char>(std::stoi(ref.substr(i + 1, 2), nullptr, 16)));
                i += 2;
            } else {
                frag.push_back(ref[i]);
            }
        }
        if (!frag.empty() && frag[0] != '/') {
            fail(ptr, "reference \"" + ref + "\" is not a JSON pointer (anchors are not supported)");
            return nullptr;
        }
        const J *cur = &root;
        canonical.clear();
        size_t pos = 0;
        while (pos < frag.size()) {
            size_t next = frag.find('/', pos + 1);
            std::string tok = frag.substr(pos + 1, next == std::string::npos ? std::string::npos : next - pos - 1);
            pos = next == std::string::npos ? frag.size() : next;
            std::string t;
            for (size_t i = 0; i < tok.size(); ++i) {
                if (tok[i] == '~' && i + 1 < tok.size() && (tok[i + 1] == '0' || tok[i + 1] == '1')) {
                    t.push_back(tok[i + 1] == '0' ? '~' : '/');
                    ++i;
                } else {
                    t.push_back(tok[i]);
                }
            }
            if (cur->is_object()) {
                auto it = cur->find(t);
                if (it == cur->end()) {
                    fail(ptr, "cannot resolve reference \"" + ref + "\"");
                    return nullptr;
                }
                cur = &*it;
            } else if (cur->is_array() && !t.empty() && t.find_first_not_of("0123456789") == std::string::npos &&
                       t.size() < 10 && std::stoul(t) < cur->size()) {
                cur = &(*cur)[std::stoul(t)];
            } else {
                fail(ptr, "cannot resolve reference \"" + ref + "\"");
                return nullptr;
            }
            canonical = ptr_join(canonical, t);
        }
        return cur;
    }

    bool schema_list(const J &v, const std::string &ptr, std::vector<int> &out, int depth) {
        if (!v.is_array() || v.empty()) return fail(ptr, "expected a non-empty array of schemas");
        for (size_t i = 0; i < v.size(); ++i) {
            int c = compile(v[i], ptr_join(ptr, i), depth + 1);
            if (c < 0) return false;
            out.push_back(c);
        }
        return true;
    }

    int compile(const J &j, const std::string &ptr, int depth) {
        auto found = memo.find(ptr);
        if (found != memo.end()) return found->second;
        if (depth > 256) {
            fail(ptr, "nested too deeply");
            return -1;
        }
        int idx = static_cast<int>(nodes.size());
        nodes.emplace_back();
        memo.emplace(ptr, idx);
        Node n;
        if (j.is_boolean()) {
            n.never = !j.get<bool>();
            nodes[idx] = std::move(n);
            return idx;
        }
        if (!j.is_object()) {
            fail(ptr, "expected a schema (an object or a boolean)");
            return -1;
        }
        int validating = 0;  // keywords other than "type" that constrain the value
        bool nullable = false;
        for (auto it = j.begin(); it != j.end(); ++it) {
            const std::string &k = it.key();
            const J &v = it.value();
            std::string kp = ptr_join(ptr, k);
            if (k == "type") {
                auto one = [&](const J &t, const std::string &tp) -> bool {
                    if (!t.is_string()) return fail(tp, "expected a type name (a string)");
                    const std::string &s = t.get_ref<const std::string &>();
                    uint8_t bit = s == "null"      ? T_NULL
                                  : s == "boolean" ? T_BOOL
                                  : s == "integer" ? T_INT
                                  : s == "number"  ? T_NUM
                                  : s == "string"  ? T_STR
                                  : s == "array"   ? T_ARR
                                  : s == "object"  ? T_OBJ
                                                   : 0;
                    if (!bit)
                        return fail(tp, "unknown type \"" + s +
                                            "\" (expected null, boolean, integer, number, string, array or object)");
                    if (n.types & bit) return fail(tp, "duplicate type \"" + s + "\"");
                    n.types |= bit;
                    return true;
                };
                if (v.is_array()) {
                    if (v.empty()) return fail(kp, "expected a type name or a non-empty array of them"), -1;
                    for (size_t i = 0; i < v.size(); ++i)
                        if (!one(v[i], ptr_join(kp, i))) return -1;
                } else if (!one(v, kp)) {
                    return -1;
                }
                continue;
            }
            ++validating;
            if (k == "enum" || k == "const") {
                // Both may come together (pydantic writes a one-value Literal as
                // {"const": "a", "enum": ["a"]}): the value must satisfy both.
                if (k == "enum" && (!v.is_array() || v.empty())) return fail(kp, "expected a non-empty array"), -1;
                std::vector<J> vals;
                if (k == "const") vals.push_back(v);
                else vals.assign(v.begin(), v.end());
                if (n.has_enum) {
                    std::vector<J> both;
                    for (const auto &a : n.enum_values)
                        for (const auto &b : vals)
                            if (json_equal(a, b)) both.push_back(a);
                    if (both.empty()) return fail(kp, "enum and const have no value in common"), -1;
                    vals = std::move(both);
                }
                n.has_enum = true;
                n.enum_values = std::move(vals);
            } else if (k == "properties") {
                if (!v.is_object()) return fail(kp, "expected an object of schemas"), -1;
                n.has_properties = true;
                for (auto p = v.begin(); p != v.end(); ++p) {
                    int c = compile(p.value(), ptr_join(kp, p.key()), depth + 1);
                    if (c < 0) return -1;
                    n.props.push_back({p.key(), c, false});
                }
            } else if (k == "required") {
                if (!v.is_array()) return fail(kp, "expected an array of property names"), -1;
                for (size_t i = 0; i < v.size(); ++i) {
                    if (!v[i].is_string()) return fail(ptr_join(kp, i), "expected a property name (a string)"), -1;
                    for (size_t k2 = 0; k2 < i; ++k2)
                        if (v[k2] == v[i]) return fail(ptr_join(kp, i), "duplicate name " + dump(v[i])), -1;
                }
            } else if (k == "additionalProperties") {
                if (v.is_boolean() && !v.get<bool>()) n.additional_false = true;
                if (v.is_boolean() && v.get<bool>()) continue;
                n.additional = compile(v, kp, depth + 1);
                if (n.additional < 0) return -1;
            } else if (k == "items") {
                if (v.is_array()) {
                    // Draft-07 tuples (TypeBox's Tuple): items [..] is 2020-12's prefixItems.
                    if (j.contains("prefixItems")) return fail(kp, "an array of items together with prefixItems"), -1;
                    if (!schema_list(v, kp, n.prefix_items, depth)) return -1;
                    continue;
                }
                if (j.contains("additionalItems")) return fail(ptr_join(ptr, "additionalItems"), "needs an array of items"), -1;
                if (v.is_boolean() && !v.get<bool>()) n.items_false = true;
                if (v.is_boolean() && v.get<bool>()) continue;
                n.items = compile(v, kp, depth + 1);
                if (n.items < 0) return -1;
            } else if (k == "uniqueItems") {
                if (!v.is_boolean()) return fail(kp, "expected true or false"), -1;
                n.unique_items = v.get<bool>();
            } else if (k == "additionalItems") {
                // Draft-07 companion of an array "items": what follows the tuple.
                auto it2 = j.find("items");
                if (it2 == j.end() || !it2->is_array()) return fail(kp, "needs an array of items"), -1;
                if (v.is_boolean() && !v.get<bool>()) n.items_false = true;
                if (v.is_boolean() && v.get<bool>()) continue;
                n.items = compile(v, kp, depth + 1);
                if (n.items < 0) return -1;
            } else if (k == "patternProperties") {
                if (!v.is_object()) return fail(kp, "expected an object of schemas"), -1;
                for (auto p = v.begin(); p != v.end(); ++p) {
                    std::string pp = ptr_join(kp, p.key()), why;
                    auto re = validation::Pattern::compile(p.key(), &why);
                    if (!re) return fail(pp, why), -1;
                    int c = compile(p.value(), pp, depth + 1);
                    if (c < 0) return -1;
                    n.pattern_props.push_back({std::move(re), c});
                }
            } else if (k == "prefixItems") {
                if (!schema_list(v, kp, n.prefix_items, depth)) return -1;
            } else if (k == "minItems") {
                if (!nonneg(v, kp, n.min_items)) return -1;
                n.has_min_items = true;
            } else if (k == "maxItems") {
                if (!nonneg(v, kp, n.max_items)) return -1;
                n.has_max_items = true;
            } else if (k == "minLength") {
                if (!nonneg(v, kp, n.min_len)) return -1;
                n.has_min_len = true;
            } else if (k == "maxLength") {
                if (!nonneg(v, kp, n.max_len)) return -1;
                n.has_max_len = true;
            } else if (k == "minProperties") {
                if (!nonneg(v, kp, n.min_props)) return -1;
                n.has_min_props = true;
            } else if (k == "maxProperties") {
                if (!nonneg(v, kp, n.max_props)) return -1;
                n.has_max_props = true;
            } else if (k == "pattern") {
                if (!v.is_string()) return fail(kp, "expected a regular expression (a string)"), -1;
                std::string why;
                n.pattern = validation::Pattern::compile(v.get_ref<const std::string &>(), &why);
                if (!n.pattern) return fail(kp, why), -1;
            } else if (k == "minimum") {
                if (!number(v, kp, n.minimum)) return -1;
            } else if (k == "maximum") {
                if (!number(v, kp, n.maximum)) return -1;
            } else if (k == "exclusiveMinimum") {
                if (!number(v, kp, n.xminimum, true)) return -1;
            } else if (k == "exclusiveMaximum") {
                if (!number(v, kp, n.xmaximum, true)) return -1;
            } else if (k == "multipleOf") {
                if (!number(v, kp, n.multiple_of)) return -1;
                if (n.multiple_of.v <= 0) return fail(kp, "expected a number greater than 0"), -1;
            } else if (k == "format") {
                --validating;
                if (!v.is_string()) return fail(kp, "expected a format name (a string)"), -1;
                if (v.get_ref<const std::string &>() == "uuid") {
                    n.fmt_uuid = true;
                    ++validating;
                }
            } else if (k == "$ref") {
                if (!v.is_string()) return fail(kp, "expected a reference (a string)"), -1;
                std::string canonical;
                const J *target = resolve(v.get_ref<const std::string &>(), kp, canonical);
                if (!target) return -1;
                n.ref = compile(*target, canonical, depth + 1);
                if (n.ref < 0) return -1;
            } else if (k == "allOf") {
                if (!schema_list(v, kp, n.all_of, depth)) return -1;
            } else if (k == "anyOf") {
                if (!schema_list(v, kp, n.any_of, depth)) return -1;
            } else if (k == "oneOf") {
                if (!schema_list(v, kp, n.one_of, depth)) return -1;
            } else if (k == "nullable") {
                --validating;
                if (!v.is_boolean()) return fail(kp, "expected true or false"), -1;
                nullable = v.get<bool>();
            } else if (k == "$defs" || k == "definitions") {
                --validating;
                if (!v.is_object()) return fail(kp, "expected an object of schemas"), -1;
                for (auto d = v.begin(); d != v.end(); ++d)
                    if (compile(d.value(), ptr_join(kp, d.key()), depth + 1) < 0) return -1;
            } else if (k == "title") {
                --validating;
                if (v.is_string()) n.title = v.get<std::string>();
            } else {
                --validating;
                for (const char *r : kRefused)
                    if (k == r) return fail(kp, "keyword \"" + k + "\" is not supported"), -1;
                // Anything else is an annotation (description, default, examples, x-...).
            }
        }
        // "required" after "properties" may come in either order: mark it now.
        if (auto r = j.find("required"); r != j.end()) {
            for (const auto &name : *r) {
                const std::string &s = name.get_ref<const std::string &>();
                bool in_props = false;
                for (auto &p : n.props)
                    if (p.name == s) p.required = in_props = true;
                if (!in_props) n.required_extra.push_back(s);
            }
        }
        if (nullable && n.types) n.types |= T_NULL;
        if ((n.types & T_NUM) && (n.types & T_INT)) n.types &= static_cast<uint8_t>(~T_INT);
        n.pure_null = n.types == T_NULL && validating == 0;
        if (n.has_min_len && n.has_max_len && n.min_len > n.max_len)
            return fail(ptr_join(ptr, "minLength"), "greater than maxLength"), -1;
        if (n.has_min_items && n.has_max_items && n.min_items > n.max_items)
            return fail(ptr_join(ptr, "minItems"), "greater than maxItems"), -1;
        if (n.has_min_props && n.has_max_props && n.min_props > n.max_props)
            return fail(ptr_join(ptr, "minProperties"), "greater than maxProperties"), -1;
        if (n.minimum.set && n.maximum.set && n.minimum.v > n.maximum.v)
            return fail(ptr_join(ptr, "minimum"), "greater than maximum"), -1;
        n.props_by_name.resize(n.props.size());
        for (uint32_t i = 0; i < n.props.size(); ++i) n.props_by_name[i] = i;
        std::sort(n.props_by_name.begin(), n.props_by_name.end(),
                  [&](uint32_t a, uint32_t b) { return n.props[a].name < n.props[b].name; });
        if (n.has_enum) {
            // pydantic puts an Enum class in $defs and a Literal inline: the first
            // fails with type "enum", the second with "literal_error".
            n.enum_named = j.contains("enum") && !j.contains("const") && is_def_entry(ptr);
            n.enum_expected = expected_list(n.enum_values);
        }
        nodes[idx] = std::move(n);
        return idx;
    }
};

// A $ref/allOf/anyOf/oneOf chain that returns to a node without descending into
// the value would loop forever at request time: refuse it at compile time.
bool find_cycle(const std::vector<Node> &nodes, int at, std::vector<uint8_t> &state) {
    if (state[at] == 1) return true;
    if (state[at] == 2) return false;
    state[at] = 1;
    const Node &n = nodes[at];
    auto visit = [&](int c) { return c >= 0 && find_cycle(nodes, c, state); };
    bool cyc = visit(n.ref);
    for (int c : n.all_of) cyc = cyc || visit(c);
    for (int c : n.any_of) cyc = cyc || visit(c);
    for (int c : n.one_of) cyc = cyc || visit(c);
    state[at] = cyc ? 1 : 2;
    return cyc;
}

std::string label_of(const std::vector<Node> &nodes, int at, int depth) {
    const Node &n = nodes[at];
    if (!n.title.empty()) return n.title;
    if (n.ref >= 0 && depth < 4) return label_of(nodes, n.ref, depth + 1);
    uint8_t t = n.types & static_cast<uint8_t>(~T_NULL);
    auto inner = [&](int c) { return c >= 0 && depth < 3 ? label_of(nodes, c, depth + 1) : std::string("any"); };
    switch (t) {
    case T_BOOL: return "bool";
    case T_INT: return "int";
    case T_NUM: return "float";
    case T_STR: return "str";
    case T_ARR: return "list[" + inner(n.items) + "]";
    case T_OBJ: return n.has_properties ? "dict" : "dict[str," + inner(n.additional) + "]";
    case 0:
        if (n.types == T_NULL) return "none";
        if (n.has_enum) return "literal[" + n.enum_expected + "]";
        return "any";
    default: return "union";
    }
}

// ---------------------------------------------------------------- body DOM

// Builds an ordered DOM: keys are appended in body order (no per-key search,
// so a body with many keys costs linear time), depth is capped.
struct DomBuilder {
    J &root;
    size_t max_depth;
    std::vector<J *> stack;
    J *slot = nullptr;  // where an object member's value goes
    bool too_deep = false;
    std::string error;
    size_t error_pos = 0;

    J *place(J &&v) {
        if (stack.empty()) {
            root = std::move(v);
            return &root;
        }
        J *top = stack.back();
        if (top->is_array()) {
            auto &a = top->get_ref<J::array_t &>();
            a.push_back(std::move(v));
            return &a.back();
        }
        *slot = std::move(v);
        return slot;
    }
    bool null() { return place(J(nullptr)), true; }
    bool boolean(bool b) { return place(J(b)), true; }
    bool number_integer(J::number_integer_t n) { return place(J(n)), true; }
    bool number_unsigned(J::number_unsigned_t n) { return place(J(n)), true; }
    bool number_float(J::number_float_t n, const std::string &) { return place(J(n)), true; }
    bool string(std::string &s) { return place(J(std::move(s))), true; }
    bool binary(J::binary_t &) { return false; }
    bool open(J::value_t t) {
        if (stack.size() >= max_depth) {
            too_deep = true;
            return false;
        }
        stack.push_back(place(J(t)));
        return true;
    }
    bool start_object(size_t) { return open(J::value_t::object); }
    bool start_array(size_t) { return open(J::value_t::array); }
    bool end_object() { return stack.pop_back(), true; }
    bool end_array() { return stack.pop_back(), true; }
    bool key(std::string &k) {
        auto &o = stack.back()->get_ref<J::object_t &>();
        o.emplace_back(std::move(k), nullptr);
        slot = &o.back().second;
        return true;
    }
    bool parse_error(size_t pos, const std::string &, const std::exception &ex) {
        error = ex.what();
        error_pos = pos;
        return false;
    }
};

// "[json.exception.parse_error.101] parse error at line 1, column 2: syntax error
// while parsing value - invalid literal; last read: 'x'" -> "invalid literal"
std::string short_reason(const std::string &what) {
    std::string s = what;
    if (auto p = s.find(" - "); p != std::string::npos) s = s.substr(p + 3);
    else if (auto c = s.rfind(": "); c != std::string::npos) s = s.substr(c + 2);
    if (auto p = s.find("; last read"); p != std::string::npos) s.erase(p);
    return s;
}

// ---------------------------------------------------------------- validation

struct LocPart {
    std::string_view key;
    size_t index = 0;
    bool is_index = false;
};

struct Ctx {
    Ctx(const std::vector<Node> &n, const SchemaOptions &o, std::vector<ValidationError> *e)
        : nodes(n), opts(o), out(e) {}
    const std::vector<Node> &nodes;
    const SchemaOptions &opts;
    std::vector<LocPart> loc;
    std::vector<ValidationError> *out;
    size_t steps = 0;
    bool stop = false;       // step budget exhausted
    bool truncated = false;
    size_t input_bytes = 0;
    const J *memo_input = nullptr;
    std::string memo_dump;

    // True when validation should stop; hitting the error cap marks the result truncated.
    bool full() {
        if (out->size() >= opts.max_errors) truncated = true;
        return stop || out->size() >= opts.max_errors;
    }

    std::string loc_json() const {
        std::string s = "[";
        for (size_t i = 0; i < loc.size(); ++i) {
            if (i) s.push_back(',');
            if (loc[i].is_index) s += std::to_string(loc[i].index);
            else validation::append_json_string(s, loc[i].key);
        }
        s.push_back(']');
        return s;
    }

    std::string input_json(const J *v) {
        if (!v) return {};
        if (v != memo_input) {
            memo_input = v;
            memo_dump = dump(*v);
        }
        if (input_bytes + memo_dump.size() > opts.max_input_bytes) return {};
        input_bytes += memo_dump.size();
        return memo_dump;
    }

    void error(const char *type, std::string msg, const J *input, std::string ctx = {}) {
        if (out->size() >= opts.max_errors) {
            truncated = true;
            return;
        }
        out->push_back({type, loc_json(), std::move(msg), input_json(input), std::move(ctx)});
    }
};

std::string plural(size_t n, const char *word) { return std::to_string(n) + " " + word + (n == 1 ? "" : "s"); }

void validate_node(Ctx &c, int at, const J &v);

void type_error(Ctx &c, uint8_t bit, const Node &n, const J &v) {
    switch (bit) {
    case T_NULL: c.error("none_required", "Input should be None", &v); break;
    case T_BOOL: c.error("bool_type", "Input should be a valid boolean", &v); break;
    case T_INT:
        if (v.is_number_float())
            c.error("int_from_float", "Input should be a valid integer, got a number with a fractional part", &v);
        else
            c.error("int_type", "Input should be a valid integer", &v);
        break;
    case T_NUM: c.error("float_type", "Input should be a valid number", &v); break;
    case T_STR: c.error("string_type", "Input should be a valid string", &v); break;
    case T_ARR: c.error("list_type", "Input should be a valid list", &v); break;
    case T_OBJ:
        if (n.has_properties)
            c.error("model_attributes_type", "Input should be a valid dictionary or object to extract fields from", &v);
        else
            c.error("dict_type", "Input should be a valid dictionary", &v);
        break;
    }
}

const char *type_label(uint8_t bit) {
    switch (bit) {
    case T_NULL: return "none";
    case T_BOOL: return "bool";
    case T_INT: return "int";
    case T_NUM: return "float";
    case T_STR: return "str";
    case T_ARR: return "list";
    default: return "dict";
    }
}

uint8_t value_bits(const J &v) {
    switch (v.type()) {
    case J::value_t::null: return T_NULL;
    case J::value_t::boolean: return T_BOOL;
    case J::value_t::number_integer:
    case J::value_t::number_unsigned: return T_INT | T_NUM;
    case J::value_t::number_float: return static_cast<uint8_t>(T_NUM | (is_integral(v) ? T_INT : 0));
    case J::value_t::string: return T_STR;
    case J::value_t::array: return T_ARR;
    case J::value_t::object: return T_OBJ;
    default: return 0;
    }
}

bool check_string(Ctx &c, const Node &n, const J &v) {
    const std::string &s = v.get_ref<const std::string &>();
    if (n.has_min_len || n.has_max_len) {
        size_t len = validation::code_points(s);
        if (n.has_min_len && len < n.min_len) {
            c.error("string_too_short", "String should have at least " + plural(n.min_len, "character"), &v,
                    "{\"min_length\":" + std::to_string(n.min_len) + "}");
            return false;
        }
        if (n.has_max_len && len > n.max_len) {
            c.error("string_too_long", "String should have at most " + plural(n.max_len, "character"), &v,
                    "{\"max_length\":" + std::to_string(n.max_len) + "}");
            return false;
        }
    }
    if (n.pattern && !n.pattern->search(s)) {
        std::string ctx = "{\"pattern\":";
        validation::append_json_string(ctx, n.pattern->source());
        ctx.push_back('}');
        c.error("string_pattern_mismatch", "String should match pattern '" + n.pattern->source() + "'", &v,
                std::move(ctx));
        return false;
    }
    if (n.fmt_uuid) {
        std::string why;
        if (!validation::parse_uuid(s, &why)) {
            std::string ctx = "{\"error\":";
            validation::append_json_string(ctx, why);
            ctx.push_back('}');
            c.error("uuid_parsing", "Input should be a valid UUID, " + why, &v, std::move(ctx));
            return false;
        }
    }
    return true;
}

bool check_number(Ctx &c, const Node &n, const J &v) {
    long double x = num_of(v);
    if (n.multiple_of.set) {
        bool ok;
        if (v.is_number_integer() && std::trunc(n.multiple_of.v) == n.multiple_of.v) {
            ok = std::fmod(x, n.multiple_of.v) == 0;
        } else {
            long double q = x / n.multiple_of.v;
            ok = std::fabs(q - std::round(q)) <= 1e-9L * std::max<long double>(1, std::fabs(q));
        }
        if (!ok) {
            c.error("multiple_of", "Input should be a multiple of " + n.multiple_of.text, &v,
                    "{\"multiple_of\":" + n.multiple_of.text + "}");
            return false;
        }
    }
    // pydantic's order: le, lt, ge, gt. Negated tests so NaN fails them all.
    if (n.maximum.set && !(x <= n.maximum.v)) {
        c.error("less_than_equal", "Input should be less than or equal to " + n.maximum.text, &v,
                "{\"le\":" + n.maximum.text + "}");
        return false;
    }
    if (n.xmaximum.set && !(x < n.xmaximum.v)) {
        c.error("less_than", "Input should be less than " + n.xmaximum.text, &v, "{\"lt\":" + n.xmaximum.text + "}");
        return false;
    }
    if (n.minimum.set && !(x >= n.minimum.v)) {
        c.error("greater_than_equal", "Input should be greater than or equal to " + n.minimum.text, &v,
                "{\"ge\":" + n.minimum.text + "}");
        return false;
    }
    if (n.xminimum.set && !(x > n.xminimum.v)) {
        c.error("greater_than", "Input should be greater than " + n.xminimum.text, &v,
                "{\"gt\":" + n.xminimum.text + "}");
        return false;
    }
    return true;
}

void size_error(Ctx &c, bool too_short, const char *field_type, size_t limit, size_t actual, const char *unit,
                const J &v) {
    std::string msg = std::string(field_type) + " should have " + (too_short ? "at least " : "at most ") +
                      plural(limit, unit) + " after validation, not " + std::to_string(actual);
    std::string ctx = std::string("{\"field_type\":\"") + field_type + "\",\"" +
                      (too_short ? "min_length" : "max_length") + "\":" + std::to_string(limit) +
                      ",\"actual_length\":" + std::to_string(actual) + "}";
    c.error(too_short ? "too_short" : "too_long", std::move(msg), &v, std::move(ctx));
}

void check_unique(Ctx &c, const J &v);

void check_array(Ctx &c, const Node &n, const J &v) {
    const auto &a = v.get_ref<const J::array_t &>();
    const char *ft = n.prefix_items.empty() ? "List" : "Tuple";
    if (n.has_min_items && a.size() < n.min_items) return size_error(c, true, ft, n.min_items, a.size(), "item", v);
    if (n.has_max_items && a.size() > n.max_items) return size_error(c, false, ft, n.max_items, a.size(), "item", v);
    if (n.items_false && a.size() > n.prefix_items.size())
        return size_error(c, false, ft, n.prefix_items.size(), a.size(), "item", v);
    size_t before = c.out->size();
    for (size_t i = 0; i < a.size() && !c.full(); ++i) {
        int child = i < n.prefix_items.size() ? n.prefix_items[i] : n.items;
        if (child < 0) {
            if (i >= n.prefix_items.size()) break;
            continue;
        }
        c.loc.push_back({{}, i, true});
        validate_node(c, child, a[i]);
        c.loc.pop_back();
    }
    if (n.unique_items && c.out->size() == before && !c.stop) check_unique(c, v);
}

// A canonical text per value, equal exactly when the values are JSON-equal
// (1 and 1.0 alike, object keys in any order): uniqueItems in O(n) hashing.
void canonical(const J &v, std::string &out) {
    switch (v.type()) {
    case J::value_t::null: out += 'n'; break;
    case J::value_t::boolean: out += v.get<bool>() ? 't' : 'f'; break;
    case J::value_t::string: validation::append_json_string(out, v.get_ref<const std::string &>()); break;
    case J::value_t::array:
        out += '[';
        for (const auto &e : v) canonical(e, out), out += ',';
        out += ']';
        break;
    case J::value_t::object: {
        const auto &o = v.get_ref<const J::object_t &>();
        std::vector<const std::pair<const std::string, J> *> members;
        for (const auto &m : o) members.push_back(&m);
        std::stable_sort(members.begin(), members.end(), [](auto *a, auto *b) { return a->first < b->first; });
        out += '{';
        for (size_t i = 0; i < members.size(); ++i) {
            // duplicate keys: the last one wins, as everywhere else
            if (i + 1 < members.size() && members[i + 1]->first == members[i]->first) continue;
            validation::append_json_string(out, members[i]->first);
            out += ':';
            canonical(members[i]->second, out);
            out += ',';
        }
        out += '}';
        break;
    }
    default: {
        char buf[64];
        std::snprintf(buf, sizeof buf, "#%.21Lg", num_of(v));
        out += buf;
    }
    }
}

void check_unique(Ctx &c, const J &v) {
    const auto &a = v.get_ref<const J::array_t &>();
    std::unordered_map<std::string, size_t> seen;
    std::string key;
    for (size_t i = 0; i < a.size(); ++i) {
        key.clear();
        canonical(a[i], key);
        auto [it, fresh] = seen.emplace(key, i);
        if (fresh) continue;
        std::string why = "items must be unique: item " + std::to_string(i) + " repeats item " +
                          std::to_string(it->second);
        std::string ctx = "{\"error\":";
        validation::append_json_string(ctx, why);
        ctx.push_back('}');
        c.error("value_error", "Value error, " + why, &v, std::move(ctx));
        return;
    }
}

const J *find_last(const J::object_t &o, std::string_view key) {
    for (auto it = o.rbegin(); it != o.rend(); ++it)
        if (it->first == key) return &it->second;
    return nullptr;
}

void check_object(Ctx &c, const Node &n, const J &v) {
    const auto &o = v.get_ref<const J::object_t &>();
    if (n.has_min_props && o.size() < n.min_props)
        return size_error(c, true, "Dictionary", n.min_props, o.size(), "item", v);
    if (n.has_max_props && o.size() > n.max_props)
        return size_error(c, false, "Dictionary", n.max_props, o.size(), "item", v);
    for (const auto &p : n.props) {
        if (c.full()) return;
        const J *child = find_last(o, p.name);
        c.loc.push_back({p.name, 0, false});
        if (child) validate_node(c, p.node, *child);
        else if (p.required) c.error("missing", "Field required", &v);
        c.loc.pop_back();
    }
    for (const auto &name : n.required_extra) {
        if (c.full()) return;
        if (!find_last(o, name)) {
            c.loc.push_back({name, 0, false});
            c.error("missing", "Field required", &v);
            c.loc.pop_back();
        }
    }
    if (n.additional < 0 && !n.additional_false && n.pattern_props.empty()) return;
    for (const auto &[key, val] : o) {
        if (c.full()) return;
        auto it = std::lower_bound(n.props_by_name.begin(), n.props_by_name.end(), key,
                                   [&](uint32_t i, const std::string &k) { return n.props[i].name < k; });
        bool named = it != n.props_by_name.end() && n.props[*it].name == key;
        bool matched = named;
        c.loc.push_back({key, 0, false});
        for (const auto &pp : n.pattern_props) {
            if (!pp.pattern->search(key)) continue;
            matched = true;
            validate_node(c, pp.node, val);
        }
        if (!matched) {
            if (n.additional_false) c.error("extra_forbidden", "Extra inputs are not permitted", &val);
            else if (n.additional >= 0) validate_node(c, n.additional, val);
        }
        c.loc.pop_back();
    }
}

// Runs one union branch into its own error list; true when it passed.
bool try_branch(Ctx &c, int at, const J &v, std::vector<ValidationError> &errs, std::string_view label) {
    std::vector<ValidationError> *saved = c.out;
    c.out = &errs;
    if (!label.empty()) c.loc.push_back({label, 0, false});
    validate_node(c, at, v);
    if (!label.empty()) c.loc.pop_back();
    c.out = saved;
    return errs.empty() && !c.stop;
}

void add_errors(Ctx &c, std::vector<ValidationError> &errs) {
    for (auto &e : errs) {
        if (c.out->size() >= c.opts.max_errors) {
            c.truncated = true;
            return;
        }
        c.out->push_back(std::move(e));
    }
}

void check_union(Ctx &c, const std::vector<int> &branches, const J &v, bool one_of) {
    // pydantic's Optional[X]: anyOf [X, {"type":"null"}] is X or null, errors at X's loc.
    std::vector<int> live;
    for (int b : branches) {
        if (c.nodes[b].pure_null) {
            if (v.is_null() && !one_of) return;
            if (!v.is_null()) continue;
        }
        live.push_back(b);
    }
    if (live.size() == 1 && !one_of) return validate_node(c, live[0], v);
    std::vector<std::vector<ValidationError>> errs(live.size());
    size_t passed = 0;
    for (size_t i = 0; i < live.size(); ++i) {
        if (try_branch(c, live[i], v, errs[i], c.nodes[live[i]].label)) {
            if (!one_of) return;
            ++passed;
        }
        if (c.stop) return;
    }
    if (passed == 1) return;
    if (passed > 1) {
        c.error("value_error", "Value error, input matches more than one schema in oneOf", &v);
        return;
    }
    for (auto &e : errs) add_errors(c, e);
}

void validate_node(Ctx &c, int at, const J &v) {
    if (c.stop) return;
    if (++c.steps > c.opts.max_steps) {
        c.stop = true;
        return;
    }
    const Node &n = c.nodes[at];
    if (n.never) {
        c.error("value_error", "Value error, no value is allowed here", &v);
        return;
    }
    uint8_t vb = value_bits(v);
    if (n.types && !(vb & n.types)) {
        uint8_t want = n.types & static_cast<uint8_t>(~T_NULL);
        if (!want) want = T_NULL;
        if ((want & (want - 1)) == 0) return type_error(c, want, n, v);
        // Several types: one error per type, tagged like pydantic's union members.
        for (uint8_t bit = 1; bit && bit <= T_OBJ; bit = static_cast<uint8_t>(bit << 1)) {
            if (!(want & bit)) continue;
            c.loc.push_back({type_label(bit), 0, false});
            type_error(c, bit, n, v);
            c.loc.pop_back();
        }
        return;
    }
    if (n.has_enum) {
        bool hit = false;
        for (const auto &e : n.enum_values)
            if (json_equal(e, v)) {
                hit = true;
                break;
            }
        if (!hit) {
            std::string ctx = "{\"expected\":";
            validation::append_json_string(ctx, n.enum_expected);
            ctx.push_back('}');
            c.error(n.enum_named ? "enum" : "literal_error", "Input should be " + n.enum_expected, &v, std::move(ctx));
            return;
        }
    }
    switch (v.type()) {
    case J::value_t::string:
        if (!check_string(c, n, v)) return;
        break;
    case J::value_t::number_integer:
    case J::value_t::number_unsigned:
    case J::value_t::number_float:
        if (!check_number(c, n, v)) return;
        break;
    case J::value_t::array: check_array(c, n, v); break;
    case J::value_t::object: check_object(c, n, v); break;
    default: break;
    }
    if (n.ref >= 0) validate_node(c, n.ref, v);
    for (int b : n.all_of) validate_node(c, b, v);
    if (!n.any_of.empty()) check_union(c, n.any_of, v, false);
    if (!n.one_of.empty()) check_union(c, n.one_of, v, true);
}

}  // namespace

std::unique_ptr<const Schema> Schema::compile(std::string_view json, std::string *err, const SchemaOptions &opts) {
    std::string dummy;
    if (!err) err = &dummy;
    if (opts.max_depth == 0 || opts.max_errors == 0 || opts.max_steps == 0) {
        *err = "schema options: max_depth, max_errors and max_steps must be at least 1";
        return nullptr;
    }
    J doc;
    try {
        doc = J::parse(json.begin(), json.end());
    } catch (const std::exception &e) {
        *err = "schema is not valid JSON: " + std::string(e.what());
        if (auto p = err->find("[json.exception."); p != std::string::npos)
            if (auto q = err->find("] ", p); q != std::string::npos) err->erase(p, q + 2 - p);
        return nullptr;
    }
    std::unique_ptr<Schema> s(new Schema());
    s->impl_ = std::make_unique<Impl>();
    s->impl_->opts = opts;
    try {
        Compiler comp{doc, s->impl_->nodes, {}, {}};
        int root = comp.compile(doc, "", 0);
        if (root < 0) {
            *err = comp.err;
            return nullptr;
        }
        s->impl_->root = root;
        auto &nodes = s->impl_->nodes;
        std::vector<uint8_t> state(nodes.size(), 0);
        for (size_t i = 0; i < nodes.size(); ++i) {
            if (find_cycle(nodes, static_cast<int>(i), state)) {
                std::string where;
                for (const auto &[ptr, idx] : comp.memo)
                    if (idx == static_cast<int>(i)) where = ptr;
                *err = "schema " + (where.empty() ? std::string("(root)") : where) +
                       ": reference cycle that never descends into the value ($ref/allOf/anyOf/oneOf)";
                return nullptr;
            }
        }
        for (size_t i = 0; i < nodes.size(); ++i) nodes[i].label = label_of(nodes, static_cast<int>(i), 0);
    } catch (const std::exception &e) {
        *err = std::string("schema: ") + e.what();
        return nullptr;
    }
    return s;
}

ValidationResult Schema::validate_text(std::string_view body, std::string_view loc_root) const {
    if (body.empty()) return validate(body, loc_root);  // missing, as for JSON
    // Through nlohmann's writer with replacement: invalid UTF-8 becomes U+FFFD.
    J doc = J::parse(J(std::string(body)).dump(-1, ' ', false, J::error_handler_t::replace));
    ValidationResult r;
    check_document(&doc, loc_root, r);
    return r;
}

void Schema::check_document(const void *document, std::string_view loc_root, ValidationResult &r) const {
    const J &doc = *static_cast<const J *>(document);
    const SchemaOptions &opts = impl_->opts;
    Ctx c(impl_->nodes, opts, &r.errors);
    r.errors.reserve(std::min<size_t>(opts.max_errors, 8));
    c.loc.push_back({loc_root, 0, false});
    validate_node(c, impl_->root, doc);
    if (c.stop) {
        r.errors.clear();
        std::string root_json = "[";
        validation::append_json_string(root_json, loc_root);
        root_json.push_back(']');
        r.errors.push_back({"too_complex", root_json, "Input is too complex to validate against this schema", {}, {}});
    }
    r.truncated = c.truncated;
    if (!r.errors.empty()) r.outcome = ValidationResult::Outcome::Invalid;
}

ValidationResult Schema::validate(std::string_view body, std::string_view loc_root) const {
    ValidationResult r;
    const SchemaOptions &opts = impl_->opts;
    if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) {
        // No body at all: FastAPI answers a missing body like a missing field.
        std::string root_json = "[";
        validation::append_json_string(root_json, loc_root);
        root_json.push_back(']');
        r.outcome = ValidationResult::Outcome::Invalid;
        r.errors.push_back({"missing", root_json, "Field required", "null", {}});
        return r;
    }
    J doc;
    DomBuilder b{doc, opts.max_depth, {}, nullptr, false, {}, 0};
    bool parsed = false;
    // nlohmann's lexer takes a NUL byte for the end of input and would ignore what
    // follows; a raw NUL is never valid JSON (not even inside a string).
    if (size_t nul = body.find('\0'); nul != std::string_view::npos) {
        b.error = "invalid character NUL";
        b.error_pos = nul + 1;
    } else {
        try {
            parsed = J::sax_parse(body.begin(), body.end(), &b, nlohmann::detail::input_format_t::json, true);
        } catch (const std::exception &e) {
            b.error = e.what();
        }
    }
    if (!parsed) {
        r.outcome = ValidationResult::Outcome::NotJson;
        if (b.too_deep) {
            r.reason = "nesting deeper than " + std::to_string(opts.max_depth) + " levels";
            r.position = 0;
        } else {
            r.reason = short_reason(b.error);
            r.position = b.error_pos ? b.error_pos - 1 : 0;
        }
        std::string ctx = "{\"error\":";
        validation::append_json_string(ctx, r.reason);
        ctx.push_back('}');
        std::string loc = "[";
        validation::append_json_string(loc, loc_root);
        loc += "," + std::to_string(r.position) + "]";
        r.errors.push_back({"json_invalid", std::move(loc), "JSON decode error", "{}", std::move(ctx)});
        return r;
    }
    check_document(&doc, loc_root, r);
    return r;
}

}  // namespace ql
