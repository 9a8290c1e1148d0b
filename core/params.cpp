// Typed path/query parameters (see params.hpp).
#include "params.hpp"

#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>

namespace ql {

using J = nlohmann::ordered_json;

namespace validation {

static std::string_view trim(std::string_view s) {
    auto sp = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; };
    while (!s.empty() && sp(s.front())) s.remove_prefix(1);
    while (!s.empty() && sp(s.back())) s.remove_suffix(1);
    return s;
}

// Digits with single underscores between them (Python's int("1_000")).
static bool strip_underscores(std::string_view s, std::string &out) {
    out.clear();
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '_') {
            bool digit_before = i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9';
            bool digit_after = i + 1 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '9';
            if (!digit_before || !digit_after) return false;
            continue;
        }
        out.push_back(s[i]);
    }
    return true;
}

IntParse parse_int(std::string_view s, int64_t &out) {
    s = trim(s);
    std::string digits;
    if (!strip_underscores(s, digits)) return IntParse::Invalid;
    std::string_view d = digits;
    bool neg = false;
    if (!d.empty() && (d[0] == '+' || d[0] == '-')) {
        neg = d[0] == '-';
        d.remove_prefix(1);
    }
    // "3.0" and "3.00" are integers (pydantic strips zero decimals); "3." too.
    if (auto dot = d.find('.'); dot != std::string_view::npos) {
        if (d.find_first_not_of('0', dot + 1) != std::string_view::npos) return IntParse::Invalid;
        d = d.substr(0, dot);
    }
    if (d.empty() || d.find_first_not_of("0123456789") != std::string_view::npos) return IntParse::Invalid;
    uint64_t mag = 0;
    auto [p, ec] = std::from_chars(d.data(), d.data() + d.size(), mag);
    if (ec == std::errc::result_out_of_range) return IntParse::TooBig;
    if (ec != std::errc() || p != d.data() + d.size()) return IntParse::Invalid;
    if (neg) {
        if (mag > static_cast<uint64_t>(INT64_MAX) + 1) return IntParse::TooBig;
        out = mag == static_cast<uint64_t>(INT64_MAX) + 1 ? INT64_MIN : -static_cast<int64_t>(mag);
    } else {
        if (mag > static_cast<uint64_t>(INT64_MAX)) return IntParse::TooBig;
        out = static_cast<int64_t>(mag);
    }
    return IntParse::Ok;
}

bool parse_float(std::string_view s, double &out) {
    s = trim(s);
    std::string text;
    if (!strip_underscores(s, text)) return false;
    std::string_view t = text;
    bool neg = false;
    if (!t.empty() && (t[0] == '+' || t[0] == '-')) {
        neg = t[0] == '-';
        t.remove_prefix(1);
    }
    if (t.empty() || t[0] == '+' || t[0] == '-') return false;
    // from_chars would take "nan(...)"; Python's float() does not.
    if (t.find('(') != std::string_view::npos) return false;
    double v = 0;
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v, std::chars_format::general);
    if (p != t.data() + t.size()) return false;
    if (ec == std::errc::result_out_of_range) {
        // Overflow is inf in Python; underflow is 0.
        bool tiny = t.find_first_of("eE") != std::string_view::npos &&
                    t.find('-', t.find_first_of("eE")) != std::string_view::npos;
        v = tiny ? 0.0 : HUGE_VAL;
    } else if (ec != std::errc()) {
        return false;
    }
    out = neg ? -v : v;
    return true;
}

bool parse_bool(std::string_view s, bool &out) {
    std::string l;
    for (char c : s) l.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c));
    static const char *const yes[] = {"1", "on", "t", "true", "y", "yes"};
    static const char *const no[] = {"0", "off", "f", "false", "n", "no"};
    for (const char *w : yes)
        if (l == w) return out = true, true;
    for (const char *w : no)
        if (l == w) return out = false, true;
    return false;
}

}  // namespace validation

namespace {

struct SpecError {
    std::string &err;
    bool operator()(const std::string &name, const std::string &key, const std::string &msg) {
        std::string where = "params ";
        where += J(name).dump();
        if (!key.empty()) where += "/" + key;
        err = where + ": " + msg;
        return false;
    }
};

bool bound(const J &v, ParamBound &out) {
    if (!v.is_number()) return false;
    if (v.is_number_float() && !std::isfinite(v.get<double>())) return false;
    out.set = true;
    out.value = v.is_number_unsigned()  ? static_cast<long double>(v.get<uint64_t>())
                : v.is_number_integer() ? static_cast<long double>(v.get<int64_t>())
                                        : static_cast<long double>(v.get<double>());
    out.text = v.dump();
    return true;
}

bool length(const J &v, size_t &out) {
    if (!v.is_number_unsigned()) {
        if (v.is_number_integer() && v.get<int64_t>() >= 0) {
            out = static_cast<size_t>(v.get<int64_t>());
            return true;
        }
        return false;
    }
    out = static_cast<size_t>(v.get<uint64_t>());
    return true;
}

bool parse_spec(const std::string &name, const J &d, ParamSpec &s, SpecError &fail) {
    if (name.empty()) return fail(name, "", "a parameter needs a name");
    if (!d.is_object()) return fail(name, "", "expected an object describing the parameter");
    auto in = d.find("in");
    if (in == d.end()) return fail(name, "", "missing \"in\" (\"path\" or \"query\")");
    if (*in == "path") s.in = ParamIn::Path;
    else if (*in == "query") s.in = ParamIn::Query;
    else return fail(name, "in", "expected \"path\" or \"query\"");
    s.name = name;
    s.required = s.in == ParamIn::Path;
    if (auto t = d.find("type"); t != d.end()) {
        if (*t == "integer") s.type = ParamType::Integer;
        else if (*t == "number") s.type = ParamType::Number;
        else if (*t == "string") s.type = ParamType::String;
        else if (*t == "boolean") s.type = ParamType::Boolean;
        else if (*t == "uuid") s.type = ParamType::Uuid;
        else return fail(name, "type", "expected \"integer\", \"number\", \"string\", \"boolean\" or \"uuid\", got " + t->dump());
    }
    bool numeric = s.type == ParamType::Integer || s.type == ParamType::Number;
    for (auto it = d.begin(); it != d.end(); ++it) {
        const std::string &k = it.key();
        const J &v = it.value();
        if (k == "in" || k == "type" || k == "description" || k == "title" || k == "default" ||
            k == "examples" || k == "deprecated") {
            continue;
        }
        if (k == "required") {
            if (!v.is_boolean()) return fail(name, k, "expected true or false");
            if (s.in == ParamIn::Path && !v.get<bool>()) return fail(name, k, "path parameters are always required");
            s.required = v.get<bool>();
            continue;
        }
        ParamBound *b = k == "minimum" || k == "ge"            ? &s.minimum
                        : k == "maximum" || k == "le"          ? &s.maximum
                        : k == "exclusiveMinimum" || k == "gt" ? &s.exclusive_minimum
                        : k == "exclusiveMaximum" || k == "lt" ? &s.exclusive_maximum
                                                               : nullptr;
        if (b) {
            if (!numeric) return fail(name, k, "bounds apply to integer and number parameters only");
            if (b->set) return fail(name, k, "the same bound is given twice");
            if (!bound(v, *b)) return fail(name, k, "expected a number");
            continue;
        }
        bool string_key = k == "minLength" || k == "maxLength" || k == "pattern" || k == "enum";
        if (string_key && s.type != ParamType::String)
            return fail(name, k, "applies to string parameters only");
        if (k == "minLength") {
            if (!length(v, s.min_length)) return fail(name, k, "expected a non-negative integer");
            s.has_min_length = true;
        } else if (k == "maxLength") {
            if (!length(v, s.max_length)) return fail(name, k, "expected a non-negative integer");
            s.has_max_length = true;
        } else if (k == "pattern") {
            if (!v.is_string()) return fail(name, k, "expected a regular expression (a string)");
            std::string why;
            auto p = validation::Pattern::compile(v.get_ref<const std::string &>(), &why);
            if (!p) return fail(name, k, why);
            s.pattern = std::move(p);
        } else if (k == "enum") {
            if (!v.is_array() || v.empty()) return fail(name, k, "expected a non-empty array of strings");
            for (const auto &e : v) {
                if (!e.is_string()) return fail(name, k, "expected a non-empty array of strings");
                s.enum_values.push_back(e.get<std::string>());
            }
        } else {
            return fail(name, k, "unknown key \"" + k + "\"");
        }
    }
    if (s.has_min_length && s.has_max_length && s.min_length > s.max_length)
        return fail(name, "minLength", "greater than maxLength");
    if (s.minimum.set && s.maximum.set && s.minimum.value > s.maximum.value)
        return fail(name, "minimum", "greater than maximum");
    return true;
}

std::string loc_of(const ParamSpec &s) {
    std::string loc = s.in == ParamIn::Path ? "[\"path\"," : "[\"query\",";
    validation::append_json_string(loc, s.name);
    loc.push_back(']');
    return loc;
}

std::string json_str(std::string_view s) {
    std::string out;
    validation::append_json_string(out, s);
    return out;
}

std::string plural(size_t n) { return std::to_string(n) + (n == 1 ? " character" : " characters"); }


// Returns false and appends one error when a bound fails (pydantic's order: le, lt, ge, gt).
bool check_bounds(const ParamSpec &s, long double x, ValidationError base, std::vector<ValidationError> &errors) {
    auto emit = [&](const char *type, const char *what, const char *key, const ParamBound &b) {
        base.type = type;
        base.msg = std::string("Input should be ") + what + " " + b.text;
        base.ctx = std::string("{\"") + key + "\":" + b.text + "}";
        errors.push_back(std::move(base));
        return false;
    };
    if (s.maximum.set && !(x <= s.maximum.value)) return emit("less_than_equal", "less than or equal to", "le", s.maximum);
    if (s.exclusive_maximum.set && !(x < s.exclusive_maximum.value))
        return emit("less_than", "less than", "lt", s.exclusive_maximum);
    if (s.minimum.set && !(x >= s.minimum.value))
        return emit("greater_than_equal", "greater than or equal to", "ge", s.minimum);
    if (s.exclusive_minimum.set && !(x > s.exclusive_minimum.value))
        return emit("greater_than", "greater than", "gt", s.exclusive_minimum);
    return true;
}

void check_one(const ParamSpec &s, const ParamValue *pv, std::vector<ValidationError> &errors, ParsedParam &out) {
    out.spec = &s;
    if (!pv) {
        if (s.required) errors.push_back({"missing", loc_of(s), "Field required", "null", {}});
        return;
    }
    out.present = true;
    out.raw = pv->value;
    ValidationError e{{}, loc_of(s), {}, json_str(pv->value), {}};
    auto fail = [&](const char *type, std::string msg, std::string ctx = {}) {
        e.type = type;
        e.msg = std::move(msg);
        e.ctx = std::move(ctx);
        errors.push_back(std::move(e));
    };
    switch (s.type) {
    case ParamType::Integer: {
        auto r = validation::parse_int(pv->value, out.integer);
        if (r == validation::IntParse::TooBig)
            return fail("int_parsing_size", "Unable to parse input string as an integer, exceeded maximum size");
        if (r != validation::IntParse::Ok)
            return fail("int_parsing", "Input should be a valid integer, unable to parse string as an integer");
        out.number = static_cast<double>(out.integer);
        check_bounds(s, static_cast<long double>(out.integer), std::move(e), errors);
        return;
    }
    case ParamType::Number:
        if (!validation::parse_float(pv->value, out.number))
            return fail("float_parsing", "Input should be a valid number, unable to parse string as a number");
        check_bounds(s, static_cast<long double>(out.number), std::move(e), errors);
        return;
    case ParamType::Boolean:
        if (!validation::parse_bool(pv->value, out.boolean))
            return fail("bool_parsing", "Input should be a valid boolean, unable to interpret input");
        return;
    case ParamType::Uuid: {
        std::string why;
        if (!validation::parse_uuid(pv->value, &why))
            return fail("uuid_parsing", "Input should be a valid UUID, " + why, "{\"error\":" + json_str(why) + "}");
        return;
    }
    case ParamType::String: {
        if (!s.enum_values.empty()) {
            for (const auto &v : s.enum_values)
                if (v == pv->value) return;
            std::string expected;
            for (size_t i = 0; i < s.enum_values.size(); ++i) {
                if (i) expected += i + 1 == s.enum_values.size() ? " or " : ", ";
                expected += validation::py_repr(s.enum_values[i]);
            }
            return fail("enum", "Input should be " + expected, "{\"expected\":" + json_str(expected) + "}");
        }
        if (s.has_min_length || s.has_max_length) {
            size_t len = validation::code_points(pv->value);
            if (s.has_min_length && len < s.min_length)
                return fail("string_too_short", "String should have at least " + plural(s.min_length),
                            "{\"min_length\":" + std::to_string(s.min_length) + "}");
            if (s.has_max_length && len > s.max_length)
                return fail("string_too_long", "String should have at most " + plural(s.max_length),
                            "{\"max_length\":" + std::to_string(s.max_length) + "}");
        }
        if (s.pattern && !s.pattern->search(pv->value))
            return fail("string_pattern_mismatch", "String should match pattern '" + s.pattern->source() + "'",
                        "{\"pattern\":" + json_str(s.pattern->source()) + "}");
        return;
    }
    }
}

}  // namespace

std::unique_ptr<const ParamSpecs> ParamSpecs::compile(std::string_view json, std::string *err) {
    std::string dummy;
    if (!err) err = &dummy;
    J doc;
    try {
        doc = J::parse(json.begin(), json.end());
    } catch (const std::exception &e) {
        *err = std::string("params are not valid JSON: ") + e.what();
        return nullptr;
    }
    if (!doc.is_object()) {
        *err = "params: expected an object {\"name\": {\"in\": \"path\"|\"query\", ...}}";
        return nullptr;
    }
    std::unique_ptr<ParamSpecs> out(new ParamSpecs());
    SpecError fail{*err};
    std::vector<ParamSpec> path, query;
    try {
        for (auto it = doc.begin(); it != doc.end(); ++it) {
            ParamSpec s;
            if (!parse_spec(it.key(), it.value(), s, fail)) return nullptr;
            (s.in == ParamIn::Path ? path : query).push_back(std::move(s));
        }
    } catch (const std::exception &e) {
        *err = std::string("params: ") + e.what();
        return nullptr;
    }
    out->specs_ = std::move(path);
    for (auto &q : query) out->specs_.push_back(std::move(q));
    return out;
}

void ParamSpecs::validate(std::span<const ParamValue> path, std::span<const ParamValue> query,
                          std::vector<ValidationError> &errors, std::vector<ParsedParam> *parsed,
                          size_t max_errors) const {
    if (parsed) parsed->assign(specs_.size(), ParsedParam{});
    std::vector<ValidationError> mine;
    for (size_t i = 0; i < specs_.size(); ++i) {
        const ParamSpec &s = specs_[i];
        const ParamValue *found = nullptr;
        auto list = s.in == ParamIn::Path ? path : query;
        for (size_t k = list.size(); k-- > 0;)  // last one wins
            if (list[k].name == s.name) {
                found = &list[k];
                break;
            }
        ParsedParam scratch;
        check_one(s, found, mine, parsed ? (*parsed)[i] : scratch);
    }
    for (auto &e : mine) {
        if (errors.size() >= max_errors) break;
        errors.push_back(std::move(e));
    }
}

}  // namespace ql
