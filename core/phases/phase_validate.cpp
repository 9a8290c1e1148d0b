// Validation: typed path and query parameters, then the JSON body.
#include "phases/phases.hpp"

#include <vector>

#include "params.hpp"
#include "response_writer.hpp"
#include "rules.hpp"
#include "schema.hpp"

namespace ql {

// Typed parameters, then the JSON body: false when answered here (FastAPI's
// shapes: 422 with every error of both, or 400 for a body that is not JSON).
bool validate_phase(PhaseCtx &c, Request *r, const RouteRules &rr) {
    static thread_local std::vector<ValidationError> errors;
    static thread_local std::vector<ParamValue> path, query;
    errors.clear();
    if (rr.params) {
        path.clear();
        query.clear();
        for (const ParamRef &p : r->params) path.push_back({*p.name, r->view(p.value)});
        for (const SpanPair &q : r->queries) query.push_back({r->view(q.name), r->view(q.value)});
        rr.params->validate(path, query, errors);
    }
    if (rr.body_schema) {
        // No Content-Type, application/json or application/*+json: the body
        // is JSON. Any other type hands the schema the text, as FastAPI does.
        bool has_type = false;
        std::string_view type = find_header(*r, "content-type", &has_type);
        type = type.substr(0, type.find(';'));
        while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) type.remove_suffix(1);
        bool json = !has_type || iequals(type, "application/json") ||
                    (type.size() > 17 && iequals(type.substr(0, 12), "application/") &&
                     iequals(type.substr(type.size() - 5), "+json"));
        ValidationResult v = json ? rr.body_schema->validate(r->view(r->body))
                                  : rr.body_schema->validate_text(r->view(r->body));
        if (v.outcome == ValidationResult::Outcome::NotJson) {
            answer_body(c.out, r, 400, v.body());
            return false;
        }
        if (errors.empty()) errors.swap(v.errors);
        else for (auto &e : v.errors) errors.push_back(std::move(e));
    }
    if (errors.empty()) return true;
    answer_body(c.out, r, 422, render_detail(errors));
    return false;
}

}  // namespace ql
