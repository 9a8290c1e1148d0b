// Body validation: every supported keyword (valid and invalid), loc paths,
// $ref/$defs, unions, limits, bodies that are not JSON, refused schemas.
#include <doctest.h>

#include <time.h>

#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "schema.hpp"

using namespace ql;

namespace {

std::unique_ptr<const Schema> S(const std::string &json, const SchemaOptions &opts = {}) {
    std::string err;
    auto s = Schema::compile(json, &err, opts);
    INFO(err);
    REQUIRE(s);
    return s;
}

// The error the compiler gives, or "" when it compiled.
std::string refused(const std::string &json) {
    std::string err;
    auto s = Schema::compile(json, &err);
    if (s) return "";
    CHECK(!err.empty());
    return err;
}

// "type loc; type loc" for compact checks.
std::string summary(const Schema &s, std::string_view body) {
    ValidationResult r = s.validate(body);
    std::string out;
    for (const auto &e : r.errors) {
        if (!out.empty()) out += "; ";
        out += e.type + " " + e.loc;
    }
    return out;
}

bool valid(const Schema &s, std::string_view body) { return s.validate(body).ok(); }

const ValidationError &first(const ValidationResult &r) {
    REQUIRE(!r.errors.empty());
    return r.errors[0];
}

const char *kItem = R"({
  "title": "Item", "type": "object",
  "properties": {
    "name": {"type": "string", "minLength": 1, "maxLength": 50},
    "price": {"type": "number", "minimum": 0},
    "quantity": {"type": "integer", "minimum": 1, "maximum": 1000},
    "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 5}
  },
  "required": ["name", "price"],
  "additionalProperties": false
})";

}  // namespace

TEST_CASE("a valid item passes, an invalid one answers FastAPI's exact 422 body") {
    auto s = S(kItem);
    auto ok = s->validate(R"({"name":"pen","price":1.5,"quantity":3,"tags":["a"]})");
    CHECK(ok.ok());
    CHECK(ok.status() == 200);
    CHECK(ok.body().empty());
    auto bad = s->validate(R"({"name":"pen","price":-1})");
    CHECK(bad.status() == 422);
    CHECK(bad.body() ==
          R"({"detail":[{"type":"greater_than_equal","loc":["body","price"],"msg":"Input should be greater than or equal to 0","input":-1,"ctx":{"ge":0}}]})");
}

TEST_CASE("type: each JSON type, valid and invalid, with pydantic's messages") {
    struct Case {
        const char *type, *good, *bad, *err, *msg;
    } cases[] = {
        {"string", R"("x")", "1", "string_type", "Input should be a valid string"},
        {"integer", "7", R"("7")", "int_type", "Input should be a valid integer"},
        {"number", "7.5", "true", "float_type", "Input should be a valid number"},
        {"boolean", "false", "0", "bool_type", "Input should be a valid boolean"},
        {"array", "[]", "{}", "list_type", "Input should be a valid list"},
        {"object", "{}", "[]", "dict_type", "Input should be a valid dictionary"},
        {"null", "null", "0", "none_required", "Input should be None"},
    };
    for (const auto &c : cases) {
        CAPTURE(c.type);
        auto s = S(std::string(R"({"type":")") + c.type + "\"}");
        CHECK(valid(*s, c.good));
        auto r = s->validate(c.bad);
        CHECK(r.status() == 422);
        CHECK(first(r).type == c.err);
        CHECK(first(r).msg == c.msg);
        CHECK(first(r).loc == R"(["body"])");
        CHECK(first(r).input == c.bad);
    }
}

TEST_CASE("no coercion: strings are not numbers, booleans are not integers; 1.0 is an integer") {
    auto i = S(R"({"type":"integer"})");
    CHECK(summary(*i, R"("1")") == R"(int_type ["body"])");
    CHECK(summary(*i, "true") == R"(int_type ["body"])");
    CHECK(summary(*i, "1.5") == R"(int_from_float ["body"])");
    CHECK(first(i->validate("1.5")).msg == "Input should be a valid integer, got a number with a fractional part");
    CHECK(valid(*i, "1.0"));
    CHECK(valid(*i, "-3"));
    CHECK(valid(*i, "18446744073709551615"));
    auto n = S(R"({"type":"number"})");
    CHECK(summary(*n, R"("1")") == R"(float_type ["body"])");
    CHECK(summary(*n, "false") == R"(float_type ["body"])");
    CHECK(valid(*n, "1"));
    CHECK(valid(*n, "-2.5e3"));
    auto b = S(R"({"type":"boolean"})");
    CHECK(summary(*b, R"("true")") == R"(bool_type ["body"])");
    CHECK(summary(*b, "1") == R"(bool_type ["body"])");
}

TEST_CASE("type arrays: null makes a value nullable; several types report one error per type") {
    auto s = S(R"({"type":["string","null"],"minLength":2})");
    CHECK(valid(*s, "null"));
    CHECK(valid(*s, R"("ab")"));
    CHECK(summary(*s, R"("a")") == R"(string_too_short ["body"])");
    CHECK(summary(*s, "1") == R"(string_type ["body"])");
    auto u = S(R"({"type":["integer","string"]})");
    CHECK(valid(*u, "1"));
    CHECK(valid(*u, R"("x")"));
    CHECK(summary(*u, "[]") == R"(int_type ["body","int"]; string_type ["body","str"])");
    auto n = S(R"({"type":["integer","number"]})");  // integer is a number: one type
    CHECK(summary(*n, R"("x")") == R"(float_type ["body"])");
}

TEST_CASE("properties: nested objects and arrays give the full loc") {
    auto s = S(R"({"type":"object","properties":{
        "a":{"type":"object","properties":{"b":{"type":"array","items":{"type":"object",
             "properties":{"c":{"type":"integer"}}}}}}}})");
    CHECK(valid(*s, R"({"a":{"b":[{"c":1},{"c":2}]}})"));
    CHECK(summary(*s, R"({"a":{"b":[{"c":1},{"c":"x"},{"c":true}]}})") ==
          R"(int_type ["body","a","b",1,"c"]; int_type ["body","a","b",2,"c"])");
    CHECK(summary(*s, R"({"a":{"b":{}}})") == R"(list_type ["body","a","b"])");
    CHECK(valid(*s, R"({"other":1})"));  // additional properties are allowed by default
}

TEST_CASE("required: missing fields carry the enclosing object as input") {
    auto s = S(kItem);
    auto r = s->validate(R"({"price":2})");
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].type == "missing");
    CHECK(r.errors[0].loc == R"(["body","name"])");
    CHECK(r.errors[0].msg == "Field required");
    CHECK(r.errors[0].input == R"({"price":2})");
    CHECK(r.errors[0].ctx.empty());
    // A required name without a properties entry still counts.
    auto t = S(R"({"type":"object","required":["z"]})");
    CHECK(summary(*t, "{}") == R"(missing ["body","z"])");
    CHECK(valid(*t, R"({"z":null})"));
}

TEST_CASE("errors follow the schema's property order, extras come last in body order") {
    auto s = S(kItem);
    CHECK(summary(*s, R"({"zz":1,"tags":[1],"price":"x","aa":2})") ==
          R"(missing ["body","name"]; float_type ["body","price"]; string_type ["body","tags",0]; )"
          R"(extra_forbidden ["body","zz"]; extra_forbidden ["body","aa"])");
    auto r = s->validate(R"({"name":"a","price":1,"extra":[1,2]})");
    CHECK(first(r).msg == "Extra inputs are not permitted");
    CHECK(first(r).input == "[1,2]");
}

TEST_CASE("additionalProperties as a schema validates each extra key") {
    auto s = S(R"({"type":"object","properties":{"n":{"type":"string"}},"additionalProperties":{"type":"integer"}})");
    CHECK(valid(*s, R"({"n":"x","a":1,"b":2})"));
    CHECK(summary(*s, R"({"n":"x","a":1,"b":"2"})") == R"(int_type ["body","b"])");
    auto d = S(R"({"type":"object","additionalProperties":{"type":"number"}})");
    CHECK(first(d->validate("[]")).type == "dict_type");
}

TEST_CASE("minItems / maxItems: too_short and too_long with pydantic's text and ctx") {
    auto s = S(R"({"type":"array","items":{"type":"integer"},"minItems":1,"maxItems":3})");
    CHECK(valid(*s, "[1]"));
    CHECK(valid(*s, "[1,2,3]"));
    auto r = s->validate("[]");
    CHECK(first(r).type == "too_short");
    CHECK(first(r).msg == "List should have at least 1 item after validation, not 0");
    CHECK(first(r).ctx == R"({"field_type":"List","min_length":1,"actual_length":0})");
    r = s->validate("[1,2,3,4]");
    CHECK(first(r).type == "too_long");
    CHECK(first(r).msg == "List should have at most 3 items after validation, not 4");
    CHECK(first(r).ctx == R"({"field_type":"List","max_length":3,"actual_length":4})");
    CHECK(summary(*s, R"([1,"a",3.5])") == R"(int_type ["body",1]; int_from_float ["body",2])");
}

TEST_CASE("prefixItems: tuples, with items:false refusing extra members") {
    auto s = S(R"({"type":"array","prefixItems":[{"type":"integer"},{"type":"string"}],"items":false,"minItems":2})");
    CHECK(valid(*s, R"([1,"a"])"));
    CHECK(summary(*s, R"(["a",1])") == R"(int_type ["body",0]; string_type ["body",1])");
    auto r = s->validate(R"([1,"a",3])");
    CHECK(first(r).type == "too_long");
    CHECK(first(r).msg == "Tuple should have at most 2 items after validation, not 3");
    CHECK(first(s->validate("[1]")).type == "too_short");
    auto open = S(R"({"type":"array","prefixItems":[{"type":"integer"}],"items":{"type":"boolean"}})");
    CHECK(valid(*open, "[1,true,false]"));
    CHECK(summary(*open, "[1,true,2]") == R"(bool_type ["body",2])");
}

TEST_CASE("draft-07 tuples (TypeBox's Tuple): an array items with additionalItems") {
    auto s = S(R"({"type":"array","items":[{"type":"integer"},{"type":"string"}],"additionalItems":false,
                   "minItems":2,"maxItems":2})");
    CHECK(valid(*s, R"([1,"a"])"));
    CHECK(summary(*s, R"([1,2])") == R"(string_type ["body",1])");
    CHECK(first(s->validate(R"([1,"a",3])")).type == "too_long");
    auto open = S(R"({"type":"array","items":[{"type":"integer"}],"additionalItems":{"type":"boolean"}})");
    CHECK(valid(*open, "[1,true]"));
    CHECK(summary(*open, "[1,true,3]") == R"(bool_type ["body",2])");
    auto any = S(R"({"type":"array","items":[{"type":"integer"}]})");
    CHECK(valid(*any, R"([1,"x",null])"));
}

TEST_CASE("patternProperties (TypeBox's Record) and how it combines with additionalProperties") {
    auto rec = S(R"({"type":"object","patternProperties":{"^(.*)$":{"type":"integer"}}})");
    CHECK(valid(*rec, R"({"a":1,"b":2})"));
    CHECK(summary(*rec, R"({"a":1,"b":"2"})") == R"(int_type ["body","b"])");
    auto s = S(R"({"type":"object","properties":{"id":{"type":"string"}},
                   "patternProperties":{"^x-":{"type":"string"},"^n_":{"type":"number"}},
                   "additionalProperties":false})");
    CHECK(valid(*s, R"({"id":"1","x-a":"s","n_b":2})"));
    CHECK(summary(*s, R"({"id":"1","x-a":1,"n_b":"2","other":0})") ==
          R"(string_type ["body","x-a"]; float_type ["body","n_b"]; extra_forbidden ["body","other"])");
}

TEST_CASE("uniqueItems: JSON equality (1 == 1.0, key order ignored), in linear time") {
    auto s = S(R"({"type":"array","uniqueItems":true})");
    CHECK(valid(*s, R"([1,"1",true,null,[1],{"a":1},{"a":2}])"));
    auto r = s->validate(R"([1,2,1.0])");
    CHECK(first(r).type == "value_error");
    CHECK(first(r).msg == "Value error, items must be unique: item 2 repeats item 0");
    CHECK(first(r).loc == R"(["body"])");
    CHECK(!valid(*s, R"([{"a":1,"b":[2]},{"b":[2.0],"a":1}])"));
    CHECK(valid(*s, R"([{"a":1},{"a":1,"b":1}])"));
    std::string big = "[";
    for (int i = 0; i < 100000; ++i) {
        if (i) big += ',';
        big += std::to_string(i);
    }
    CHECK(valid(*s, big + "]"));
    CHECK(!valid(*s, big + ",5]"));
    CHECK(valid(*S(R"({"uniqueItems":false})"), "[1,1]"));
    CHECK(refused(R"({"uniqueItems":1})") == "schema /uniqueItems: expected true or false");
}

TEST_CASE("minLength / maxLength count code points, not bytes") {
    auto s = S(R"({"type":"string","minLength":2,"maxLength":3})");
    CHECK(valid(*s, "\"\xc3\xa9\xc3\xa9\""));  // "éé": 4 bytes, 2 characters
    CHECK(valid(*s, R"("abc")"));
    auto r = s->validate(R"("a")");
    CHECK(first(r).type == "string_too_short");
    CHECK(first(r).msg == "String should have at least 2 characters");
    CHECK(first(r).ctx == R"({"min_length":2})");
    r = s->validate("\"\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\"");  // 4 euro signs
    CHECK(first(r).type == "string_too_long");
    CHECK(first(r).msg == "String should have at most 3 characters");
    auto one = S(R"({"type":"string","minLength":1})");
    CHECK(first(one->validate(R"("")")).msg == "String should have at least 1 character");
}

TEST_CASE("pattern: an unanchored ECMAScript search; anchors work") {
    auto s = S(R"({"type":"string","pattern":"[0-9]{3}"})");
    CHECK(valid(*s, R"("ab123cd")"));
    auto r = s->validate(R"("ab12")");
    CHECK(first(r).type == "string_pattern_mismatch");
    CHECK(first(r).msg == "String should match pattern '[0-9]{3}'");
    CHECK(first(r).ctx == R"({"pattern":"[0-9]{3}"})");
    auto a = S(R"({"type":"string","pattern":"^[a-z]+$"})");
    CHECK(valid(*a, R"("abc")"));
    CHECK(!valid(*a, R"("abc1")"));
    CHECK(!valid(*a, R"("1abc")"));
    CHECK(!valid(*a, R"("")"));
    auto nl = S(R"({"type":"string","pattern":"b"})");
    CHECK(valid(*nl, R"("a\nb")"));  // the search crosses line breaks
    CHECK(valid(*nl, "\"\xc3\xa9 b\""));
}

TEST_CASE("pattern: a long hostile string neither overflows the stack nor fails") {
    auto s = S(R"({"type":"string","pattern":"^(a|b)*$"})");
    std::string body = "\"" + std::string(200000, 'a') + "\"";
    CHECK(valid(*s, body));
    body.back() = 'c';
    body += "\"";
    CHECK(!valid(*s, body));
}

TEST_CASE("minimum / maximum / exclusiveMinimum / exclusiveMaximum") {
    auto s = S(R"({"type":"number","minimum":0,"maximum":10.5})");
    CHECK(valid(*s, "0"));
    CHECK(valid(*s, "10.5"));
    auto r = s->validate("10.6");
    CHECK(first(r).type == "less_than_equal");
    CHECK(first(r).msg == "Input should be less than or equal to 10.5");
    CHECK(first(r).ctx == R"({"le":10.5})");
    CHECK(first(s->validate("-0.1")).type == "greater_than_equal");
    auto x = S(R"({"type":"integer","exclusiveMinimum":0,"exclusiveMaximum":100})");
    CHECK(valid(*x, "1"));
    CHECK(valid(*x, "99"));
    r = x->validate("0");
    CHECK(first(r).type == "greater_than");
    CHECK(first(r).msg == "Input should be greater than 0");
    CHECK(first(r).ctx == R"({"gt":0})");
    r = x->validate("100");
    CHECK(first(r).type == "less_than");
    CHECK(first(r).msg == "Input should be less than 100");
    CHECK(first(r).ctx == R"({"lt":100})");
    // Bounds apply to numbers only.
    auto any = S(R"({"minimum":5})");
    CHECK(valid(*any, R"("x")"));
    // Exact comparisons at the edge of int64.
    auto big = S(R"({"type":"integer","maximum":9223372036854775806})");
    CHECK(valid(*big, "9223372036854775806"));
    CHECK(!valid(*big, "9223372036854775807"));
}

TEST_CASE("multipleOf") {
    auto s = S(R"({"type":"number","multipleOf":0.1})");
    CHECK(valid(*s, "0.3"));
    CHECK(valid(*s, "5"));
    CHECK(first(s->validate("0.35")).type == "multiple_of");
    auto i = S(R"({"type":"integer","multipleOf":5})");
    CHECK(valid(*i, "-15"));
    auto r = i->validate("7");
    CHECK(first(r).msg == "Input should be a multiple of 5");
    CHECK(first(r).ctx == R"({"multiple_of":5})");
}

TEST_CASE("enum and const: literal_error with Python reprs; an enum in $defs is an Enum class") {
    auto s = S(R"({"enum":["a","b","c"]})");
    CHECK(valid(*s, R"("b")"));
    auto r = s->validate(R"("d")");
    CHECK(first(r).type == "literal_error");
    CHECK(first(r).msg == "Input should be 'a', 'b' or 'c'");
    CHECK(first(r).ctx == R"({"expected":"'a', 'b' or 'c'"})");
    auto e = S(R"({"$defs":{"Color":{"title":"Color","type":"string","enum":["red","green"]}},
                   "properties":{"c":{"$ref":"#/$defs/Color"},
                                 "lit":{"title":"Lit","type":"string","enum":["x","y"]},
                                 "one":{"const":"z","enum":["z"],"type":"string"}}})");
    r = e->validate(R"({"c":"blue","lit":"q","one":"y"})");
    REQUIRE(r.errors.size() == 3);
    CHECK(r.errors[0].type == "enum");
    CHECK(r.errors[0].msg == "Input should be 'red' or 'green'");
    CHECK(r.errors[1].type == "literal_error");  // a titled Literal field is still a literal
    CHECK(r.errors[2].type == "literal_error");
    CHECK(r.errors[2].msg == "Input should be 'z'");
    CHECK(first(e->validate(R"({"c":1})")).type == "string_type");  // the type is checked first
    CHECK(refused(R"({"const":"a","enum":["b"]})") == "schema /enum: enum and const have no value in common");
    auto m = S(R"({"enum":[1,true,null,"it's"]})");
    CHECK(first(m->validate("2")).msg == R"(Input should be 1, True, None or "it's")");
    CHECK(valid(*m, "1.0"));  // JSON equality: 1 == 1.0
    CHECK(!valid(*m, "false"));
    auto c = S(R"({"const":{"k":[1,2]}})");
    CHECK(valid(*c, R"({"k":[1,2]})"));
    CHECK(first(c->validate(R"({"k":[2,1]})")).type == "literal_error");
    auto o = S(R"({"const":{"a":1,"b":[1.0]}})");
    CHECK(valid(*o, R"({"b":[1],"a":1.0})"));  // key order and 1 vs 1.0 do not matter
    CHECK(!valid(*o, R"({"a":1})"));
    CHECK(!valid(*o, R"({"a":1,"b":[1],"c":2})"));
    auto cs = S(R"({"const":"x"})");
    CHECK(first(cs->validate(R"("y")")).msg == "Input should be 'x'");
}

TEST_CASE("format uuid is checked; other formats are annotations") {
    auto s = S(R"({"type":"string","format":"uuid"})");
    CHECK(valid(*s, R"("123e4567-e89b-12d3-a456-426614174000")"));
    CHECK(valid(*s, R"("123E4567E89B12D3A456426614174000")"));
    CHECK(valid(*s, R"("urn:uuid:123e4567-e89b-12d3-a456-426614174000")"));
    auto r = s->validate(R"("123e4567-e89b-12d3-a456-42661417400g")");
    CHECK(first(r).type == "uuid_parsing");
    CHECK(first(r).msg.rfind("Input should be a valid UUID, invalid character", 0) == 0);
    CHECK(first(s->validate(R"("123")")).type == "uuid_parsing");
    auto d = S(R"({"type":"string","format":"date-time"})");
    CHECK(valid(*d, R"("not a date")"));
}

TEST_CASE("$ref to $defs: a pydantic model with a nested model, an enum and Optional fields") {
    // What pydantic v2 emits for:
    //   class Color(str, Enum): red = "red"; green = "green"
    //   class Dim(BaseModel): w: float = Field(gt=0); h: float = Field(gt=0)
    //   class Item(BaseModel): name: str; dim: Dim; color: Color; note: Optional[str] = None;
    //                          parts: list[Dim] = []
    auto s = S(R"({
      "$defs": {
        "Color": {"enum": ["red", "green"], "title": "Color", "type": "string"},
        "Dim": {"properties": {"w": {"exclusiveMinimum": 0, "title": "W", "type": "number"},
                               "h": {"exclusiveMinimum": 0, "title": "H", "type": "number"}},
                "required": ["w", "h"], "title": "Dim", "type": "object"}
      },
      "properties": {
        "name": {"title": "Name", "type": "string"},
        "dim": {"$ref": "#/$defs/Dim"},
        "color": {"$ref": "#/$defs/Color"},
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": null, "title": "Note"},
        "parts": {"default": [], "items": {"$ref": "#/$defs/Dim"}, "title": "Parts", "type": "array"}
      },
      "required": ["name", "dim", "color"], "title": "Item", "type": "object"
    })");
    CHECK(valid(*s, R"({"name":"a","dim":{"w":1,"h":2},"color":"red"})"));
    CHECK(valid(*s, R"({"name":"a","dim":{"w":1,"h":2},"color":"red","note":null,"parts":[{"w":1,"h":1}]})"));
    CHECK(summary(*s, R"({"name":"a","dim":{"w":0},"color":"blue","note":5,"parts":[{"w":1,"h":"x"}]})") ==
          R"(greater_than ["body","dim","w"]; missing ["body","dim","h"]; enum ["body","color"]; )"
          R"(string_type ["body","note"]; float_type ["body","parts",0,"h"])");
    CHECK(first(s->validate(R"({"name":"a","dim":[],"color":"red"})")).type == "model_attributes_type");
}

TEST_CASE("$ref: definitions, JSON pointer escapes, and the root") {
    auto s = S(R"({"definitions":{"a/b":{"type":"integer"},"m~n":{"type":"string"}},
                   "type":"object","properties":{"x":{"$ref":"#/definitions/a~1b"},
                   "y":{"$ref":"#/definitions/m~0n"}}})");
    CHECK(valid(*s, R"({"x":1,"y":"s"})"));
    CHECK(summary(*s, R"({"x":"1","y":1})") == R"(int_type ["body","x"]; string_type ["body","y"])");
    // Siblings of $ref apply too (2020-12).
    auto sib = S(R"({"$defs":{"N":{"type":"integer"}},"$ref":"#/$defs/N","minimum":3})");
    CHECK(valid(*sib, "3"));
    CHECK(first(sib->validate("2")).type == "greater_than_equal");
    CHECK(first(sib->validate(R"("2")")).type == "int_type");
}

TEST_CASE("recursive schemas: a tree validates to any depth with the right loc") {
    auto s = S(R"({"$defs":{"Node":{"type":"object","properties":{"v":{"type":"integer"},
                   "kids":{"type":"array","items":{"$ref":"#/$defs/Node"}}},"required":["v"]}},
                   "$ref":"#/$defs/Node"})");
    CHECK(valid(*s, R"({"v":1,"kids":[{"v":2,"kids":[{"v":3}]}]})"));
    CHECK(summary(*s, R"({"v":1,"kids":[{"v":2},{"v":3,"kids":[{"w":4}]}]})") ==
          R"(missing ["body","kids",1,"kids",0,"v"])");
    auto root = S(R"({"type":"array","items":{"$ref":"#"}})");
    CHECK(valid(*root, "[[[]],[]]"));
    CHECK(summary(*root, "[[1]]") == R"(list_type ["body",0,0])");
}

TEST_CASE("anyOf with null is Optional: errors at the field's own loc") {
    auto s = S(R"({"type":"object","properties":{"n":{"anyOf":[{"type":"integer","minimum":0},{"type":"null"}]}}})");
    CHECK(valid(*s, R"({"n":null})"));
    CHECK(valid(*s, R"({"n":3})"));
    CHECK(valid(*s, "{}"));
    CHECK(summary(*s, R"({"n":"3"})") == R"(int_type ["body","n"])");
    CHECK(summary(*s, R"({"n":-1})") == R"(greater_than_equal ["body","n"])");
}

TEST_CASE("anyOf: a union passes when one branch does, else lists every branch's errors") {
    auto s = S(R"({"$defs":{"Cat":{"title":"Cat","type":"object","properties":{"meow":{"type":"boolean"}},
                   "required":["meow"]}},
                   "anyOf":[{"type":"integer"},{"type":"string","maxLength":2},{"$ref":"#/$defs/Cat"},{"type":"null"}]})");
    CHECK(valid(*s, "1"));
    CHECK(valid(*s, R"("ab")"));
    CHECK(valid(*s, R"({"meow":true})"));
    CHECK(valid(*s, "null"));
    CHECK(summary(*s, R"("abc")") ==
          R"(int_type ["body","int"]; string_too_long ["body","str"]; model_attributes_type ["body","Cat"])");
    CHECK(summary(*s, "{}") ==
          R"(int_type ["body","int"]; string_type ["body","str"]; missing ["body","Cat","meow"])");
}

TEST_CASE("oneOf: exactly one branch") {
    auto s = S(R"({"oneOf":[{"type":"integer"},{"type":"number","minimum":10}]})");
    CHECK(valid(*s, "3"));     // integer only
    CHECK(valid(*s, "10.5"));  // number only
    auto r = s->validate("12");  // both
    CHECK(first(r).type == "value_error");
    CHECK(summary(*s, "true") == R"(int_type ["body","int"]; float_type ["body","float"])");
}

TEST_CASE("allOf: every branch applies") {
    auto s = S(R"({"allOf":[{"type":"string"},{"minLength":2},{"pattern":"^a"}]})");
    CHECK(valid(*s, R"("ab")"));
    CHECK(summary(*s, R"("b")") == R"(string_too_short ["body"]; string_pattern_mismatch ["body"])");
}

TEST_CASE("boolean schemas and OpenAPI's nullable") {
    auto t = S("true");
    CHECK(valid(*t, R"({"any":[1]})"));
    auto f = S(R"({"type":"object","properties":{"gone":false}})");
    CHECK(valid(*f, "{}"));
    CHECK(first(f->validate(R"({"gone":1})")).type == "value_error");
    auto n = S(R"({"type":"integer","nullable":true})");
    CHECK(valid(*n, "null"));
    CHECK(!valid(*n, R"("x")"));
}

TEST_CASE("annotations are ignored") {
    auto s = S(R"({"$schema":"https://json-schema.org/draft/2020-12/schema","$id":"urn:x","title":"T",
                   "description":"d","default":1,"examples":[1],"deprecated":false,"readOnly":true,
                   "x-vendor":{"a":1},"$comment":"c","type":"integer"})");
    CHECK(valid(*s, "1"));
    CHECK(!valid(*s, R"("1")"));
}

TEST_CASE("duplicate keys: the last value wins") {
    auto s = S(R"({"type":"object","properties":{"a":{"type":"integer"}}})");
    CHECK(valid(*s, R"({"a":"x","a":1})"));
    CHECK(summary(*s, R"({"a":1,"a":"x"})") == R"(int_type ["body","a"])");
}

TEST_CASE("errors are capped at max_errors and the result says so") {
    auto s = S(R"({"type":"array","items":{"type":"string"}})");
    std::string body = "[";
    for (int i = 0; i < 100; ++i) body += i ? ",1" : "1";
    body += "]";
    auto r = s->validate(body);
    CHECK(r.errors.size() == 32);
    CHECK(r.truncated);
    CHECK(r.errors.back().loc == R"(["body",31])");
    SchemaOptions o;
    o.max_errors = 3;
    auto s3 = S(R"({"type":"array","items":{"type":"string"}})", o);
    CHECK(s3->validate(body).errors.size() == 3);
    auto few = s->validate("[1,2]");
    CHECK(!few.truncated);
}

TEST_CASE("nesting depth is limited before validation; deep bodies cannot overflow the stack") {
    auto s = S("true");
    std::string ok64 = std::string(64, '[') + std::string(64, ']');
    CHECK(valid(*s, ok64));
    std::string deep65 = std::string(65, '[') + std::string(65, ']');
    auto r = s->validate(deep65);
    CHECK(r.status() == 400);
    CHECK(r.reason == "nesting deeper than 64 levels");
    std::string hostile = std::string(1000000, '[');
    CHECK(s->validate(hostile).status() == 400);
    std::string objs;
    for (int i = 0; i < 100000; ++i) objs += "{\"a\":";
    CHECK(s->validate(objs).status() == 400);
    SchemaOptions o;
    o.max_depth = 2;
    auto s2 = S("true", o);
    CHECK(valid(*s2, "[[1]]"));
    CHECK(s2->validate("[[[1]]]").status() == 400);
}

TEST_CASE("bodies that are not JSON answer 400 with FastAPI's json_invalid item") {
    auto s = S(kItem);
    struct Case {
        std::string body;
        size_t pos;
    } cases[] = {
        {R"({"name":"a","price":)", 20},       // truncated
        {R"({"name":"a","price":1} x)", 23},   // trailing garbage
        {"{\"name\":\"\xff\"}", 9},            // invalid UTF-8 inside a string
        {"{'a':1}", 1},                        // single quotes
        {"[1,]", 3},                           // trailing comma
        {"NaN", 0},
        {std::string("{\"a\":1}\0", 8), 7},
    };
    for (const auto &c : cases) {
        CAPTURE(c.body);
        auto r = s->validate(c.body);
        CHECK(r.outcome == ValidationResult::Outcome::NotJson);
        CHECK(r.status() == 400);
        CHECK(r.position == c.pos);
        CHECK(!r.reason.empty());
        REQUIRE(r.errors.size() == 1);
        CHECK(r.errors[0].type == "json_invalid");
        CHECK(r.errors[0].loc == "[\"body\"," + std::to_string(c.pos) + "]");
        CHECK(r.errors[0].msg == "JSON decode error");
        CHECK(r.errors[0].input == "{}");
    }
    // A UTF-8 BOM is skipped (Python's json.loads on bytes does the same).
    CHECK(s->validate("\xef\xbb\xbf{}").status() == 422);
    auto r = s->validate("{\"name\":");
    CHECK(r.body() == R"({"detail":[{"type":"json_invalid","loc":["body",8],"msg":"JSON decode error","input":{},)"
                      R"("ctx":{"error":"unexpected end of input; expected '[', '{', or a literal"}}]})");
}

TEST_CASE("an empty body is a missing body (422), as in FastAPI") {
    auto s = S(kItem);
    for (const char *b : {"", "  \r\n\t"}) {
        auto r = s->validate(b);
        CHECK(r.status() == 422);
        CHECK(r.body() == R"({"detail":[{"type":"missing","loc":["body"],"msg":"Field required","input":null}]})");
    }
}

TEST_CASE("loc_root names the first loc element") {
    auto s = S(R"({"type":"object","properties":{"a":{"type":"integer"}}})");
    CHECK(first(s->validate(R"({"a":"x"})", "item")).loc == R"(["item","a"])");
}

TEST_CASE("keys with quotes and control characters are escaped in loc") {
    auto s = S(R"({"type":"object","additionalProperties":false})");
    CHECK(first(s->validate(R"({"a\"b\n":1})")).loc == R"(["body","a\"b\n"])");
}

TEST_CASE("input echoes stop at max_input_bytes; the errors remain") {
    SchemaOptions o;
    o.max_input_bytes = 100;
    auto s = S(R"({"type":"object","properties":{"a":{"type":"string"},"b":{"type":"string"}},
                   "required":["a","b"]})",
               o);
    std::string big = R"({"pad":")" + std::string(80, 'x') + "\"}";
    auto r = s->validate(big);
    REQUIRE(r.errors.size() == 2);
    CHECK(r.errors[0].input == big);
    CHECK(r.errors[1].input.empty());
    CHECK(r.body().find(R"("msg":"Field required"})") != std::string::npos);
}

TEST_CASE("an exponential union over a hostile body stops at max_steps") {
    // Each level has two branches that both fail at the bottom: 2^depth visits.
    auto s = S(R"({"$defs":{"X":{"anyOf":[{"type":"array","items":{"$ref":"#/$defs/X"}},
                   {"type":"array","items":{"$ref":"#/$defs/X"},"maxItems":5}]}},"$ref":"#/$defs/X"})");
    CHECK(valid(*s, "[[[]]]"));
    std::string body = std::string(40, '[') + "1" + std::string(40, ']');
    auto r = s->validate(body);
    CHECK(r.status() == 422);
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].type == "too_complex");
}

TEST_CASE("refused schemas: invalid JSON, unknown types, wrong keyword values") {
    CHECK(refused("{").rfind("schema is not valid JSON", 0) == 0);
    CHECK(refused("[]") == "schema (root): expected a schema (an object or a boolean)");
    CHECK(refused(R"({"type":"Date"})") ==
          R"(schema /type: unknown type "Date" (expected null, boolean, integer, number, string, array or object))");
    CHECK(refused(R"({"type":["string",1]})") == "schema /type/1: expected a type name (a string)");
    CHECK(refused(R"({"type":[]})") != "");
    CHECK(refused(R"({"properties":{"price":{"type":"number","minimum":"0"}}})") ==
          "schema /properties/price/minimum: expected a number");
    CHECK(refused(R"({"properties":{"a":{"minLength":-1}}})") ==
          "schema /properties/a/minLength: expected a non-negative integer, got -1");
    CHECK(refused(R"({"maxItems":1.5})") == "schema /maxItems: expected a non-negative integer");
    CHECK(refused(R"({"required":"a"})") == "schema /required: expected an array of property names");
    CHECK(refused(R"({"required":["a","a"]})") == R"(schema /required/1: duplicate name "a")");
    CHECK(refused(R"({"properties":[]})") == "schema /properties: expected an object of schemas");
    CHECK(refused(R"({"properties":{"a":1}})") == "schema /properties/a: expected a schema (an object or a boolean)");
    CHECK(refused(R"({"additionalProperties":"no"})") ==
          "schema /additionalProperties: expected a schema (an object or a boolean)");
    CHECK(refused(R"({"enum":[]})") == "schema /enum: expected a non-empty array");
    CHECK(refused(R"({"multipleOf":0})") == "schema /multipleOf: expected a number greater than 0");
    CHECK(refused(R"({"anyOf":[]})") == "schema /anyOf: expected a non-empty array of schemas");
    CHECK(refused(R"({"minLength":3,"maxLength":2})") == "schema /minLength: greater than maxLength");
    CHECK(refused(R"({"minimum":3,"maximum":2})") == "schema /minimum: greater than maximum");
    CHECK(refused(R"({"nullable":"yes"})") == "schema /nullable: expected true or false");
}

TEST_CASE("refused schemas: patterns are compiled at registration") {
    CHECK(refused(R"({"pattern":"(a"})").rfind("schema /pattern: invalid regular expression", 0) == 0);
    CHECK(refused(R"({"pattern":"a)(b"})").rfind("schema /pattern: invalid regular expression", 0) == 0);
    CHECK(refused(R"({"pattern":"(a)\\1"})").rfind("schema /pattern: invalid regular expression", 0) == 0);
    CHECK(refused(R"({"pattern":5})") == "schema /pattern: expected a regular expression (a string)");
}

TEST_CASE("refused schemas: references") {
    CHECK(refused(R"({"$ref":"other.json#/x"})") ==
          R"(schema /$ref: only local references ("#/$defs/Name") are supported, got "other.json#/x")");
    CHECK(refused(R"({"properties":{"a":{"$ref":"#/$defs/Missing"}}})") ==
          R"(schema /properties/a/$ref: cannot resolve reference "#/$defs/Missing")");
    CHECK(refused(R"({"$ref":"#anchor"})") != "");
    CHECK(refused(R"({"$defs":{"A":{"$ref":"#/$defs/B"},"B":{"$ref":"#/$defs/A"}},"$ref":"#/$defs/A"})")
              .find("reference cycle") != std::string::npos);
    CHECK(refused(R"({"anyOf":[{"$ref":"#"},{"type":"null"}]})").find("reference cycle") != std::string::npos);
    CHECK(refused(R"({"$defs":{"Bad":{"type":"nope"}},"type":"integer"})") ==
          R"(schema /$defs/Bad/type: unknown type "nope" (expected null, boolean, integer, number, string, array or object))");
}

TEST_CASE("refused schemas: keywords that would change validation and are not implemented") {
    for (const char *k : {"not", "if", "propertyNames", "unevaluatedProperties", "contains", "dependentRequired",
                          "$dynamicRef"}) {
        CAPTURE(k);
        std::string schema = std::string("{\"") + k + "\":{}}";
        CHECK(refused(schema) == std::string("schema /") + k + ": keyword \"" + k + "\" is not supported");
    }
    CHECK(refused(R"({"exclusiveMinimum":true,"minimum":0})").find("draft-04") != std::string::npos);
    CHECK(refused(R"({"items":[{"type":"integer"}],"prefixItems":[true]})") ==
          "schema /items: an array of items together with prefixItems");
    CHECK(refused(R"({"items":{"type":"integer"},"additionalItems":false})") ==
          "schema /additionalItems: needs an array of items");
    CHECK(refused(R"({"patternProperties":{"(":{}}})").rfind("schema /patternProperties/(: invalid regular", 0) == 0);
}

TEST_CASE("refused options") {
    std::string err;
    SchemaOptions o;
    o.max_errors = 0;
    CHECK(!Schema::compile("true", &err, o));
    CHECK(err.find("max_errors") != std::string::npos);
}

TEST_CASE("one schema validates from many threads at once") {
    auto s = S(kItem);
    std::vector<std::thread> ts;
    std::vector<int> bad(4, 0);
    for (int t = 0; t < 4; ++t)
        ts.emplace_back([&, t] {
            for (int i = 0; i < 2000; ++i) {
                auto a = s->validate(R"({"name":"pen","price":1.5,"tags":["a"]})");
                auto b = s->validate(R"({"name":"","price":"x","tags":"no"})");
                if (!a.ok() || b.errors.size() != 3 || b.errors[2].loc != R"(["body","tags"])") ++bad[t];
            }
        });
    for (auto &t : ts) t.join();
    for (int b : bad) CHECK(b == 0);
}

// Throughput, not an assertion: run with `test_schema --no-skip -tc='*throughput*'`.
// Thread CPU time, so other processes on a shared machine do not count.
TEST_CASE("throughput of a ~100-byte item body" * doctest::skip()) {
    auto cpu = [] {
        timespec ts{};
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
    };
    auto s = S(kItem);
    const std::string good = R"({"name":"Widget","price":12.5,"quantity":3,"tags":["blue","small"],"sku":"W-1"})";
    const std::string bad = R"({"name":"","price":"12.5","quantity":0,"tags":["blue",7],"x":1})";
    auto s2 = S(R"({"type":"object","properties":{"name":{"type":"string"},"price":{"type":"number"},
                    "quantity":{"type":"integer"},"tags":{"type":"array","items":{"type":"string"}},
                    "sku":{"type":"string"}}})");
    struct Run {
        const char *what;
        const Schema *schema;
        const std::string *body;
        bool render;
    } runs[] = {{"valid", s2.get(), &good, false},
                {"invalid, errors only", s.get(), &bad, false},
                {"invalid, 422 body rendered", s.get(), &bad, true}};
    for (const auto &run : runs) {
        const int n = 200000;
        double t0 = cpu();
        size_t sink = 0;
        for (int i = 0; i < n; ++i) {
            auto r = run.schema->validate(*run.body);
            sink += run.render ? r.body().size() : r.errors.size();
        }
        double secs = cpu() - t0;
        std::printf("%-28s (%zu-byte body): %8.0f validations per CPU-second (sink %zu)\n", run.what,
                    run.body->size(), n / secs, sink);
    }
}

TEST_CASE("JSON strings and scalar inputs are written as nlohmann writes them") {
    // The 8-bytes-at-a-time scan must find every byte that needs an escape,
    // wherever it sits in a word, and pass everything else through unchanged.
    const std::string specials[] = {"\"", "\\", "\n", "\x01", "\x1f", "\t", "/", "\x7f", "\xc3\xa9", "\xe2\x82\xac"};
    for (size_t len = 0; len <= 20; ++len) {
        for (const std::string &sp : specials) {
            for (size_t at = 0; at <= len; ++at) {
                std::string s(len, 'a');
                s.insert(at, sp);
                std::string ours;
                validation::append_json_string(ours, s);
                CAPTURE(s);
                CHECK(ours == nlohmann::json(s).dump());
            }
        }
    }
    // Inputs echoed in errors: integers at the int64/uint64 edges, strings, literals.
    auto s = S(R"({"type":"array","items":{"const":"x"}})");
    auto r = s->validate(R"([9223372036854775807,-9223372036854775808,18446744073709551615,"q\"\u0001",true,null,0.5])");
    REQUIRE(r.errors.size() == 7);
    CHECK(r.errors[0].input == "9223372036854775807");
    CHECK(r.errors[1].input == "-9223372036854775808");
    CHECK(r.errors[2].input == "18446744073709551615");
    CHECK(r.errors[3].input == R"("q\"\u0001")");
    CHECK(r.errors[4].input == "true");
    CHECK(r.errors[5].input == "null");
    CHECK(r.errors[6].input == "0.5");
}

TEST_CASE("a body sent as another Content-Type is validated as one string, as FastAPI hands pydantic the bytes") {
    auto obj = S(R"({"type":"object","properties":{"a":{"type":"integer"}}})");
    auto r = obj->validate_text(R"({"a":1})");
    REQUIRE(r.errors.size() == 1);
    CHECK(r.status() == 422);
    CHECK(r.errors[0].type == "model_attributes_type");
    CHECK(r.errors[0].loc == R"(["body"])");
    CHECK(r.errors[0].input == R"("{\"a\":1}")");
    CHECK(obj->validate_text("").errors.at(0).type == "missing");
    CHECK(S(R"({"type":"array"})")->validate_text("[1]").errors.at(0).type == "list_type");
    CHECK(S(R"({"type":"string","maxLength":5})")->validate_text("hello").ok());
    CHECK(S(R"({"type":"string","maxLength":5})")->validate_text("hello!").errors.at(0).type == "string_too_long");
    auto bad = obj->validate_text(std::string("\xff{", 2));
    REQUIRE(bad.errors.size() == 1);
    CHECK(bad.errors[0].input == "\"\xef\xbf\xbd{\"");  // U+FFFD
}
