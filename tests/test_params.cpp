// Typed path/query parameters: parsing as pydantic's lax mode parses strings,
// bounds, FastAPI's error items, refused specs.
#include <doctest.h>

#include <string>
#include <vector>

#include "params.hpp"

using namespace ql;

namespace {

std::unique_ptr<const ParamSpecs> P(const std::string &json) {
    std::string err;
    auto p = ParamSpecs::compile(json, &err);
    INFO(err);
    REQUIRE(p);
    return p;
}

std::string refused(const std::string &json) {
    std::string err;
    auto p = ParamSpecs::compile(json, &err);
    if (p) return "";
    return err;
}

std::vector<ValidationError> run(const ParamSpecs &p, std::vector<ParamValue> path, std::vector<ParamValue> query,
                                 std::vector<ParsedParam> *parsed = nullptr) {
    std::vector<ValidationError> errors;
    p.validate(path, query, errors, parsed);
    return errors;
}

std::string summary(const std::vector<ValidationError> &errors) {
    std::string out;
    for (const auto &e : errors) {
        if (!out.empty()) out += "; ";
        out += e.type + " " + e.loc;
    }
    return out;
}

}  // namespace

TEST_CASE("integer path parameter: parsing, bounds and FastAPI's error items") {
    auto p = P(R"({"id":{"in":"path","type":"integer","minimum":1}})");
    std::vector<ParsedParam> parsed;
    CHECK(run(*p, {{"id", "42"}}, {}, &parsed).empty());
    REQUIRE(parsed.size() == 1);
    CHECK(parsed[0].present);
    CHECK(parsed[0].integer == 42);
    auto e = run(*p, {{"id", "abc"}}, {});
    REQUIRE(e.size() == 1);
    CHECK(render_detail(e) ==
          R"({"detail":[{"type":"int_parsing","loc":["path","id"],"msg":"Input should be a valid integer, unable to parse string as an integer","input":"abc"}]})");
    e = run(*p, {{"id", "0"}}, {});
    CHECK(render_detail(e) ==
          R"({"detail":[{"type":"greater_than_equal","loc":["path","id"],"msg":"Input should be greater than or equal to 1","input":"0","ctx":{"ge":1}}]})");
    e = run(*p, {}, {});
    CHECK(summary(e) == R"(missing ["path","id"])");
    CHECK(e[0].input == "null");
}

TEST_CASE("integer strings as pydantic reads them") {
    using validation::IntParse;
    int64_t v = 0;
    CHECK(validation::parse_int("+5", v) == IntParse::Ok);
    CHECK(v == 5);
    CHECK(validation::parse_int(" 7 ", v) == IntParse::Ok);
    CHECK(v == 7);
    CHECK(validation::parse_int("-1_000", v) == IntParse::Ok);
    CHECK(v == -1000);
    CHECK(validation::parse_int("3.0", v) == IntParse::Ok);
    CHECK(v == 3);
    CHECK(validation::parse_int("-9223372036854775808", v) == IntParse::Ok);
    CHECK(v == INT64_MIN);
    CHECK(validation::parse_int("9223372036854775808", v) == IntParse::TooBig);
    CHECK(validation::parse_int("99999999999999999999999", v) == IntParse::TooBig);
    for (const char *bad : {"", " ", "1.5", "1e3", "0x10", "1__0", "_1", "1_", "--1", "+", "abc", "1 2", "٣"}) {
        CAPTURE(bad);
        CHECK(validation::parse_int(bad, v) == IntParse::Invalid);
    }
    auto p = P(R"({"n":{"in":"query","type":"integer"}})");
    CHECK(summary(run(*p, {}, {{"n", "99999999999999999999"}})) == R"(int_parsing_size ["query","n"])");
}

TEST_CASE("number parameters: Python float() syntax and exclusive bounds") {
    double d = 0;
    CHECK(validation::parse_float("1.5", d));
    CHECK(d == 1.5);
    CHECK(validation::parse_float(" -2e3 ", d));
    CHECK(d == -2000);
    CHECK(validation::parse_float(".5", d));
    CHECK(validation::parse_float("1_000.5", d));
    CHECK(d == 1000.5);
    CHECK(validation::parse_float("inf", d));
    CHECK(validation::parse_float("-Infinity", d));
    CHECK(validation::parse_float("nan", d));
    CHECK(validation::parse_float("1e400", d));
    CHECK(d > 1e308);
    for (const char *bad : {"", "abc", "1.5.2", "1e", "+-1", "nan(1)", "0x1p3", "1,5"}) {
        CAPTURE(bad);
        CHECK(!validation::parse_float(bad, d));
    }
    auto p = P(R"({"x":{"in":"query","type":"number","gt":0,"lt":1}})");
    CHECK(run(*p, {}, {{"x", "0.5"}}).empty());
    auto e = run(*p, {}, {{"x", "1"}});
    REQUIRE(e.size() == 1);
    CHECK(e[0].type == "less_than");
    CHECK(e[0].msg == "Input should be less than 1");
    CHECK(e[0].ctx == R"({"lt":1})");
    CHECK(summary(run(*p, {}, {{"x", "0"}})) == R"(greater_than ["query","x"])");
    CHECK(summary(run(*p, {}, {{"x", "nan"}})) == R"(less_than ["query","x"])");  // NaN fails bounds
    e = run(*p, {}, {{"x", "half"}});
    REQUIRE(e.size() == 1);
    CHECK(e[0].type == "float_parsing");
    CHECK(e[0].msg == "Input should be a valid number, unable to parse string as a number");
}

TEST_CASE("boolean parameters accept FastAPI's words in any case") {
    auto p = P(R"({"on":{"in":"query","type":"boolean"}})");
    std::vector<ParsedParam> parsed;
    for (const char *t : {"true", "True", "1", "yes", "ON", "t", "y"}) {
        CAPTURE(t);
        CHECK(run(*p, {}, {{"on", t}}, &parsed).empty());
        CHECK(parsed[0].boolean);
    }
    for (const char *f : {"false", "FALSE", "0", "no", "off", "f", "n"}) {
        CAPTURE(f);
        CHECK(run(*p, {}, {{"on", f}}, &parsed).empty());
        CHECK(!parsed[0].boolean);
    }
    for (const char *bad : {"", "2", "yess", "tru", " true"}) {
        CAPTURE(bad);
        auto e = run(*p, {}, {{"on", bad}});
        REQUIRE(e.size() == 1);
        CHECK(e[0].type == "bool_parsing");
        CHECK(e[0].msg == "Input should be a valid boolean, unable to interpret input");
    }
}

TEST_CASE("uuid parameters") {
    auto p = P(R"({"ref":{"in":"path","type":"uuid"}})");
    CHECK(run(*p, {{"ref", "123e4567-e89b-12d3-a456-426614174000"}}, {}).empty());
    CHECK(run(*p, {{"ref", "123e4567e89b12d3a456426614174000"}}, {}).empty());
    auto e = run(*p, {{"ref", "not-a-uuid"}}, {});
    REQUIRE(e.size() == 1);
    CHECK(e[0].type == "uuid_parsing");
    CHECK(e[0].msg.rfind("Input should be a valid UUID, ", 0) == 0);
    CHECK(!e[0].ctx.empty());
}

TEST_CASE("string parameters: lengths, pattern, enum") {
    auto p = P(R"({"q":{"in":"query","type":"string","minLength":2,"maxLength":4,"pattern":"^[a-z]+$"},
                   "c":{"in":"query","enum":["red","green"]}})");
    CHECK(run(*p, {}, {{"q", "abc"}, {"c", "red"}}).empty());
    auto e = run(*p, {}, {{"q", "a"}});
    REQUIRE(e.size() == 1);
    CHECK(e[0].type == "string_too_short");
    CHECK(e[0].msg == "String should have at least 2 characters");
    CHECK(summary(run(*p, {}, {{"q", "abcde"}})) == R"(string_too_long ["query","q"])");
    e = run(*p, {}, {{"q", "AB"}});
    REQUIRE(e.size() == 1);
    CHECK(e[0].type == "string_pattern_mismatch");
    CHECK(e[0].ctx == R"({"pattern":"^[a-z]+$"})");
    e = run(*p, {}, {{"c", "blue"}});
    REQUIRE(e.size() == 1);
    CHECK(e[0].type == "enum");
    CHECK(e[0].msg == "Input should be 'red' or 'green'");
    CHECK(e[0].input == R"("blue")");
}

TEST_CASE("required and optional query parameters; a repeated one takes its last value") {
    auto p = P(R"({"q":{"in":"query","required":true},"limit":{"in":"query","type":"integer","le":100}})");
    auto e = run(*p, {}, {});
    REQUIRE(e.size() == 1);
    CHECK(render_detail(e) ==
          R"({"detail":[{"type":"missing","loc":["query","q"],"msg":"Field required","input":null}]})");
    std::vector<ParsedParam> parsed;
    CHECK(run(*p, {}, {{"q", "x"}}, &parsed).empty());
    CHECK(parsed[0].present);
    CHECK(parsed[0].raw == "x");
    CHECK(!parsed[1].present);
    CHECK(run(*p, {}, {{"q", "x"}, {"limit", "500"}, {"limit", "5"}}, &parsed).empty());
    CHECK(parsed[1].integer == 5);
    CHECK(summary(run(*p, {}, {{"q", "x"}, {"limit", "5"}, {"limit", "500"}})) == R"(less_than_equal ["query","limit"])");
    CHECK(run(*p, {}, {{"q", "x"}, {"other", "whatever"}}).empty());  // unknown query keys are ignored
}

TEST_CASE("errors list path parameters first, then query, each in declaration order") {
    auto p = P(R"({"b":{"in":"query","type":"integer"},"id":{"in":"path","type":"integer"},
                   "a":{"in":"query","type":"boolean"}})");
    REQUIRE(p->specs().size() == 3);
    CHECK(p->specs()[0].name == "id");
    CHECK(summary(run(*p, {{"id", "x"}}, {{"a", "x"}, {"b", "x"}})) ==
          R"(int_parsing ["path","id"]; int_parsing ["query","b"]; bool_parsing ["query","a"])");
    std::vector<ValidationError> errors;
    p->validate(std::vector<ParamValue>{{"id", "x"}}, std::vector<ParamValue>{{"a", "x"}, {"b", "x"}}, errors,
                nullptr, 2);
    CHECK(errors.size() == 2);
}

TEST_CASE("refused parameter specs") {
    CHECK(refused("[").rfind("params are not valid JSON", 0) == 0);
    CHECK(refused("[]").rfind("params: expected an object", 0) == 0);
    CHECK(refused(R"({"id":{"type":"integer"}})") == R"(params "id": missing "in" ("path" or "query"))");
    CHECK(refused(R"({"id":{"in":"body"}})") == R"(params "id"/in: expected "path" or "query")");
    CHECK(refused(R"({"id":{"in":"path","type":"int"}})") ==
          R"(params "id"/type: expected "integer", "number", "string", "boolean" or "uuid", got "int")");
    CHECK(refused(R"({"id":{"in":"path","required":false}})") ==
          R"(params "id"/required: path parameters are always required)");
    CHECK(refused(R"({"q":{"in":"query","minimum":1}})") ==
          R"(params "q"/minimum: bounds apply to integer and number parameters only)");
    CHECK(refused(R"({"q":{"in":"query","type":"integer","pattern":"x"}})") ==
          R"(params "q"/pattern: applies to string parameters only)");
    CHECK(refused(R"({"q":{"in":"query","type":"integer","minimum":"1"}})") == R"(params "q"/minimum: expected a number)");
    CHECK(refused(R"({"q":{"in":"query","type":"integer","minimum":1,"ge":2}})") ==
          R"(params "q"/ge: the same bound is given twice)");
    CHECK(refused(R"({"q":{"in":"query","type":"integer","minimum":5,"maximum":1}})") ==
          R"(params "q"/minimum: greater than maximum)");
    CHECK(refused(R"({"q":{"in":"query","minLength":-1}})") == R"(params "q"/minLength: expected a non-negative integer)");
    CHECK(refused(R"({"q":{"in":"query","pattern":"(x"}})").rfind(R"(params "q"/pattern: invalid regular expression)", 0) == 0);
    CHECK(refused(R"({"q":{"in":"query","enum":[1]}})") == R"(params "q"/enum: expected a non-empty array of strings)");
    CHECK(refused(R"({"q":{"in":"query","colour":"red"}})") == R"(params "q"/colour: unknown key "colour")");
    CHECK(refused(R"({"":{"in":"query"}})") == R"(params "": a parameter needs a name)");
    CHECK(refused(R"({"q":{"in":"query","description":"d","default":3,"title":"Q"}})") == "");
}
