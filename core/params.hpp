// Typed path and query parameters, declared once per route as one JSON string
// (so every binding passes the same thing) and checked natively per request.
//
//   {"id":    {"in": "path",  "type": "integer", "minimum": 1},
//    "q":     {"in": "query", "type": "string", "required": true, "maxLength": 50},
//    "limit": {"in": "query", "type": "integer", "ge": 1, "le": 100},
//    "color": {"in": "query", "type": "string", "enum": ["red", "green"]},
//    "on":    {"in": "query", "type": "boolean"},
//    "ref":   {"in": "query", "type": "uuid"}}
//
// Keys of a parameter:
//   in        "path" | "query" (required)
//   type      "integer" | "number" | "string" | "boolean" | "uuid" (default "string")
//   required  query only (default false: a missing optional parameter is no error; the
//             host applies its default); path parameters are always required
//   minimum, maximum, exclusiveMinimum, exclusiveMaximum   integer/number (JSON Schema names)
//   ge, le, gt, lt                                         the same, FastAPI's names
//   minLength, maxLength, pattern, enum                    string
//   description, title, default, examples, deprecated      annotations, ignored
// Anything else is refused at registration.
//
// Values are strings (already percent-decoded) and are parsed as pydantic's lax mode
// parses strings: integers "+5", " 7 ", "1_000", "3.0"; numbers as Python's float()
// (inf and nan included); booleans true/false/1/0/yes/no/on/off/t/f/y/n, any case.
// A repeated query parameter takes its last value (as Starlette's request.query_params).
// Errors use FastAPI's shape with loc ["path","id"] / ["query","q"]; "input" is the raw
// string (null for a missing parameter).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "schema.hpp"

namespace ql {

enum class ParamIn : uint8_t { Path, Query };
enum class ParamType : uint8_t { Integer, Number, String, Boolean, Uuid };

struct ParamBound {
    bool set = false;
    long double value = 0;  // exact for any int64 bound
    std::string text;       // as declared: 1, 0.5
};

struct ParamSpec {
    std::string name;
    ParamIn in = ParamIn::Query;
    ParamType type = ParamType::String;
    bool required = false;
    ParamBound minimum, maximum, exclusive_minimum, exclusive_maximum;
    bool has_min_length = false, has_max_length = false;
    size_t min_length = 0, max_length = 0;
    std::shared_ptr<const validation::Pattern> pattern;
    std::vector<std::string> enum_values;  // empty: any
};

// A decoded name/value pair: a path parameter or a query pair.
struct ParamValue {
    std::string_view name;
    std::string_view value;
};

// A parameter's typed value, as parsed while validating.
struct ParsedParam {
    const ParamSpec *spec = nullptr;
    bool present = false;
    std::string_view raw;
    int64_t integer = 0;
    double number = 0;
    bool boolean = false;
};

class ParamSpecs {
public:
    // Parses the JSON description; on failure returns null with *err naming the
    // parameter and key: `params "limit"/minimum: expected a number`.
    static std::unique_ptr<const ParamSpecs> compile(std::string_view json, std::string *err);

    // Appends errors (path ones first, then query, each in declaration order) to
    // errors, keeping at most max_errors in it. Fills parsed (one entry per spec, in
    // specs() order) when not null. Thread-safe.
    void validate(std::span<const ParamValue> path, std::span<const ParamValue> query,
                  std::vector<ValidationError> &errors, std::vector<ParsedParam> *parsed = nullptr,
                  size_t max_errors = 32) const;

    // Path specs first, then query specs, each in declaration order.
    const std::vector<ParamSpec> &specs() const { return specs_; }

private:
    ParamSpecs() = default;
    std::vector<ParamSpec> specs_;
};

// Parsers shared with tests: pydantic-lax string conversions.
namespace validation {
enum class IntParse { Ok, Invalid, TooBig };
IntParse parse_int(std::string_view s, int64_t &out);
bool parse_float(std::string_view s, double &out);
bool parse_bool(std::string_view s, bool &out);
}  // namespace validation

}  // namespace ql
