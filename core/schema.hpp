// Native request-body validation: a JSON Schema (draft 2020-12 subset) compiled
// once, at registration, into an immutable tree that many loops may use at once.
// Failures are reported in FastAPI's 422 shape with pydantic v2's vocabulary:
//   {"detail":[{"type":"missing","loc":["body","price"],"msg":"Field required","input":{...}}]}
//
// Supported keywords
//   type (string or array; "null" in the array makes the value nullable), enum, const,
//   properties, patternProperties, required, additionalProperties (bool or schema),
//   minProperties, maxProperties, items (schema or bool), prefixItems, minItems, maxItems,
//   draft-07 tuples (an array "items" with "additionalItems", as TypeBox's Tuple emits),
//   uniqueItems (JSON Schema's rule: duplicates are a value_error; note that pydantic
//   writes uniqueItems for set fields and accepts duplicates, so a binding that wants
//   pydantic's behaviour drops the keyword),
//   minLength, maxLength (in code points), pattern (ECMAScript, unanchored search),
//   minimum, maximum, exclusiveMinimum, exclusiveMaximum (numbers), multipleOf,
//   format "uuid" (checked), $ref (local only: "#", "#/$defs/X", "#/definitions/X",
//   any JSON pointer inside the document; recursive schemas work), allOf, anyOf, oneOf,
//   boolean schemas (true / false), OpenAPI 3.0 "nullable": true.
// Ignored (annotations): title, description, default, examples, example, deprecated,
//   readOnly, writeOnly, $schema, $id, $comment, $anchor, discriminator, content*,
//   any other format, "x-..." and other unknown names (2020-12 treats unknown keywords
//   as annotations).
// Refused at compile time (they change validation and are not implemented): not,
//   if/then/else, dependentRequired, dependentSchemas, dependencies, propertyNames,
//   unevaluatedProperties, unevaluatedItems, contains, minContains, maxContains,
//   $dynamicRef, $recursiveRef; a draft-04 boolean exclusiveMinimum;
//   references that are not local ("other.json#/x", or TypeBox's $id-based refs).
//
// Choices
// - No coercion: "1" is not a number, true is not an integer, 1.5 is not an integer;
//   1.0 IS an integer (JSON Schema's rule, and pydantic's lax int accepts it too).
// - A union (anyOf/oneOf, or a type array with several non-null types) that fails
//   reports each branch's errors with the branch's label appended to loc, as pydantic
//   does (["body","x","int"], ["body","x","str"]); anyOf [X, {"type":"null"}] (pydantic's
//   Optional[X]) reports X's errors at the field's own loc.
// - A constrained scalar reports its first failing constraint only (pydantic's order);
//   an array or object with a wrong size reports the size error and not its members.
// - Objects: errors follow the schema's property order, then extra keys in body order.
//   Duplicate keys in a body: the last value wins (Python's json does the same).
// - An empty (or all-whitespace) body is a missing body: 422 {"type":"missing","loc":["body"]}
//   as FastAPI answers. Any other body that is not JSON, nests deeper than max_depth,
//   or is not valid UTF-8 is a 400 whose detail has FastAPI's json_invalid shape.
//
// Wiring (for the route layer): compile the schema and the ParamSpecs (params.hpp)
// when the route is registered and refuse the route with the error text; per request,
// collect ParamSpecs::validate's errors first, then (if the route has a body schema)
// Schema::validate(body).errors, and answer render_detail(all) with 422 -- or the
// body's 400 when its outcome is NotJson. FastAPI lists path/query errors before body
// errors in one detail array, so the two lists simply concatenate.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ql {

// One item of a 422 "detail" list. Every field except msg/type is already JSON.
struct ValidationError {
    std::string type;   // pydantic error type: "missing", "int_type", ...
    std::string loc;    // JSON array: ["body","tags",0]
    std::string msg;    // plain text: Field required
    std::string input;  // JSON value (empty: omitted)
    std::string ctx;    // JSON object (empty: omitted)
};

// Appends {"type":...,"loc":...,"msg":...,"input":...,"ctx":...} to out.
void append_error_json(std::string &out, const ValidationError &e);
// {"detail":[...]} for a 422 (or the 400 of a body that is not JSON).
std::string render_detail(std::span<const ValidationError> errors);

struct ValidationResult {
    enum class Outcome { Valid, NotJson, Invalid };
    Outcome outcome = Outcome::Valid;
    std::vector<ValidationError> errors;  // Invalid: at most max_errors; NotJson: one json_invalid item
    std::string reason;                   // NotJson: short parser message ("invalid literal")
    size_t position = 0;                  // NotJson: byte offset where parsing stopped
    bool truncated = false;               // stopped at max_errors: the body may have more errors

    bool ok() const { return outcome == Outcome::Valid; }
    int status() const { return outcome == Outcome::Valid ? 200 : outcome == Outcome::NotJson ? 400 : 422; }
    // The response body for status() (empty when valid).
    std::string body() const { return ok() ? std::string() : render_detail(errors); }
};

struct SchemaOptions {
    size_t max_depth = 64;          // deeper bodies are refused (400) before validation
    size_t max_errors = 32;         // errors kept per body
    size_t max_steps = 1u << 20;    // schema nodes visited per body (guards nested unions)
    size_t max_input_bytes = 1u << 16;  // "input" echoes per body; beyond, "input" is left out
};

class Schema {
public:
    // Compiles JSON Schema text. On failure returns null and sets *err to a message
    // naming the offending keyword by JSON pointer:
    //   schema /properties/price/minimum: expected a number
    static std::unique_ptr<const Schema> compile(std::string_view json, std::string *err,
                                                 const SchemaOptions &opts = {});
    ~Schema();
    Schema(const Schema &) = delete;
    Schema &operator=(const Schema &) = delete;

    // Parses and validates a request body. Thread-safe (const, no shared mutable state).
    // loc_root is the first loc element ("body").
    ValidationResult validate(std::string_view body, std::string_view loc_root = "body") const;
    // A body sent with a Content-Type that is not JSON: validated as one string
    // value, as FastAPI hands pydantic the raw bytes (an object schema answers
    // model_attributes_type). Invalid UTF-8 is echoed with U+FFFD.
    ValidationResult validate_text(std::string_view body, std::string_view loc_root = "body") const;

    struct Node;  // private to schema.cpp
private:
    Schema();
    // Validates a parsed document (an nlohmann json, kept out of this header).
    void check_document(const void *document, std::string_view loc_root, ValidationResult &r) const;
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Helpers shared with params.cpp.
namespace validation {
// UTF-8 code points (the length pydantic and JSON Schema count).
size_t code_points(std::string_view s);
// Checks a UUID string (hyphenated, 32 hex, braced or urn:uuid:); on failure sets *why.
bool parse_uuid(std::string_view s, std::string *why);
// JSON string literal with escapes (UTF-8 passes through).
void append_json_string(std::string &out, std::string_view s);
// Python repr of a string, as pydantic's messages quote values ('a' or "it's").
std::string py_repr(std::string_view s);

// A JSON Schema "pattern": ECMAScript syntax, unanchored search, compiled once.
// Matching runs in time linear in the input (libstdc++'s breadth-first executor;
// no back-references), so a long hostile string cannot blow the stack.
class Pattern {
public:
    static std::unique_ptr<const Pattern> compile(std::string_view source, std::string *err);
    ~Pattern();
    bool search(std::string_view s) const;
    const std::string &source() const { return source_; }

private:
    Pattern();
    struct Impl;
    std::unique_ptr<Impl> impl_;
    std::string source_;
};
}  // namespace validation

}  // namespace ql
