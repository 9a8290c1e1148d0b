/* quicklane from C: the fastpath contract. Validation, the response cache, CORS, the rate limit,
 * API keys, static files, metrics and /healthz are native rules: a request they answer never
 * reaches this code. Host code builds the items (cJSON) and counts /cached calls.
 * Run it from examples/ (it serves ./static under /static/). */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <pthread.h>
#include <quicklane.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The body of POST /items, as JSON Schema: what pydantic's
 * class Item(BaseModel, extra="forbid"): name: str = Field(min_length=1); price: float = Field(ge=0);
 * tags: list[str] | None = None   checks. */
static const char ITEM_SCHEMA[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"name\":{\"type\":\"string\",\"minLength\":1},"
    "\"price\":{\"type\":\"number\",\"minimum\":0},"
    "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}},"
    "\"required\":[\"name\",\"price\"],\"additionalProperties\":false}";
static const char ID_PARAMS[] = "{\"id\":{\"in\":\"path\",\"type\":\"integer\",\"minimum\":1}}";

static atomic_long next_id = 1, cached_calls = 0; /* shared by every worker loop */

static void reply(ql_request *req, int status, cJSON *json) { /* sends and frees json */
    char *body = cJSON_PrintUnformatted(json);
    ql_response res = QL_RESPONSE_INIT;
    res.status = body ? status : 500, res.content_type = "application/json", res.content_type_len = 16;
    res.body = body, res.body_len = body ? strlen(body) : 0;
    ql_respond(ql_request_server(req), ql_request_id(req), &res, NULL);
    cJSON_free(body), cJSON_Delete(json);
}

static void create_item(void *user_data, ql_request *req) { /* the body is valid here */
    ql_str in = ql_request_body(req);
    cJSON *item = cJSON_ParseWithLength(in.data, in.len);
    (void)user_data;
    if (!item) { reply(req, 500, cJSON_CreateObject()); return; }
    if (!cJSON_GetObjectItemCaseSensitive(item, "tags")) cJSON_AddItemToObject(item, "tags", cJSON_CreateArray());
    cJSON_AddNumberToObject(item, "id", (double)atomic_fetch_add(&next_id, 1));
    reply(req, 201, item);
}

static void read_item(void *user_data, ql_request *req) { /* id is an integer >= 1 here */
    ql_str id = {"", 0};
    char name[64];
    (void)user_data, ql_request_param(req, "id", 2, &id);
    snprintf(name, sizeof name, "item %.*s", (int)(id.len < 40 ? id.len : 40), id.data);
    cJSON *item = cJSON_CreateObject();
    cJSON_AddNumberToObject(item, "id", strtod(id.data, NULL)); /* the view ends at a '/' or the target's end */
    cJSON_AddStringToObject(item, "name", name);
    cJSON_AddNumberToObject(item, "price", 9.5);
    cJSON_AddItemToObject(item, "tags", cJSON_CreateArray());
    reply(req, 200, item);
}

static void cached(void *user_data, ql_request *req) { /* runs once per path per 2 s */
    ql_str key = {"", 0};
    char buf[256];
    (void)user_data, ql_request_param(req, "key", 3, &key);
    snprintf(buf, sizeof buf, "%.*s", (int)(key.len < 200 ? key.len : 200), key.data);
    cJSON *json = cJSON_CreateObject();
    cJSON_AddStringToObject(json, "key", buf);
    cJSON_AddNumberToObject(json, "calls", (double)(atomic_fetch_add(&cached_calls, 1) + 1));
    reply(req, 200, json);
}

static void text(void *user_data, ql_request *req) { /* /limited and /private */
    ql_response res = QL_RESPONSE_INIT;
    res.content_type = "application/json", res.content_type_len = 16;
    res.body = (const char *)user_data, res.body_len = strlen(res.body);
    ql_respond(ql_request_server(req), ql_request_id(req), &res, NULL);
}

int main(void) {
    sigset_t sigs; /* blocked before the loops start, so they inherit the mask */
    int sig;
    sigemptyset(&sigs), sigaddset(&sigs, SIGINT), sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    ql_app *app = NULL;
    ql_server *server = NULL;
    ql_error *err = NULL;
    ql_response pong = QL_RESPONSE_INIT, ok = QL_RESPONSE_INIT;
    pong.content_type = "application/json", pong.content_type_len = 16;
    pong.body = "{\"message\":\"pong\"}", pong.body_len = strlen(pong.body);
    ok.content_type = "application/json", ok.content_type_len = 16;
    ok.body = "{\"status\":\"ok\"}", ok.body_len = strlen(ok.body);
    ql_handler on_create = QL_HANDLER_INIT, on_read = QL_HANDLER_INIT, on_cached = QL_HANDLER_INIT,
               on_limited = QL_HANDLER_INIT, on_private = QL_HANDLER_INIT;
    on_create.on_request = create_item, on_read.on_request = read_item, on_cached.on_request = cached;
    on_limited.on_request = on_private.on_request = text;
    on_limited.user_data = "{\"limited\":true}", on_private.user_data = "{\"private\":true}";

    ql_route_options create_opts = QL_ROUTE_OPTIONS_INIT, read_opts = QL_ROUTE_OPTIONS_INIT,
                     cache_opts = QL_ROUTE_OPTIONS_INIT, limited_opts = QL_ROUTE_OPTIONS_INIT,
                     private_opts = QL_ROUTE_OPTIONS_INIT;
    create_opts.body_schema = ITEM_SCHEMA, create_opts.body_schema_len = strlen(ITEM_SCHEMA);
    read_opts.params_schema = ID_PARAMS, read_opts.params_schema_len = strlen(ID_PARAMS);
    cache_opts.cache_ttl_ms = 2000;
    limited_opts.rate_limit = 5, limited_opts.rate_window_ms = 60000;
    private_opts.require_api_key = 1;
    ql_cors_options cors = QL_CORS_OPTIONS_INIT;
    cors.origins = "https://app.example", cors.origins_len = strlen(cors.origins);
    cors.methods = "GET, POST", cors.methods_len = strlen(cors.methods);
    ql_str keys[] = {{"secret-key", 10}};
    ql_static_dir_options static_opts = QL_STATIC_DIR_OPTIONS_INIT;

    ql_server_options opts = QL_SERVER_OPTIONS_INIT;
    opts.port = (uint16_t)(getenv("PORT") ? atoi(getenv("PORT")) : 8080);
    opts.workers = (uint32_t)(getenv("WORKERS") ? atoi(getenv("WORKERS")) : 0);
    if (ql_app_new(&app, &err) || ql_app_static(app, "GET", 3, "/ping", 5, &pong, &err) ||
        ql_app_static(app, "GET", 3, "/healthz", 8, &ok, &err) ||
        ql_app_route(app, "POST", 4, "/items", 6, &on_create, &err) ||
        ql_app_route_options(app, "POST", 4, "/items", 6, &create_opts, &err) ||
        ql_app_route(app, "GET", 3, "/items/{id}", 11, &on_read, &err) ||
        ql_app_route_options(app, "GET", 3, "/items/{id}", 11, &read_opts, &err) ||
        ql_app_route(app, "GET", 3, "/cached/{key}", 13, &on_cached, &err) ||
        ql_app_route_options(app, "GET", 3, "/cached/{key}", 13, &cache_opts, &err) ||
        ql_app_route(app, "GET", 3, "/limited", 8, &on_limited, &err) ||
        ql_app_route_options(app, "GET", 3, "/limited", 8, &limited_opts, &err) ||
        ql_app_route(app, "GET", 3, "/private", 8, &on_private, &err) ||
        ql_app_route_options(app, "GET", 3, "/private", 8, &private_opts, &err) ||
        ql_app_api_keys(app, NULL, 0, NULL, 0, keys, 1, &err) || ql_app_cors(app, &cors, &err) ||
        ql_app_static_dir(app, "/static/", 8, "static", 6, &static_opts, &err) ||
        ql_app_metrics(app, "/metrics", 8, &err) || ql_server_new(app, &opts, &server, &err) ||
        ql_server_start(server, &err)) {
        fprintf(stderr, "quicklane: %s\n", err ? ql_error_message(err) : "startup failed");
        ql_error_free(&err), ql_server_free(&server), ql_app_free(&app);
        return 1;
    }
    printf("quicklane listening on http://127.0.0.1:%u\n", (unsigned)ql_server_port(server));
    fflush(stdout), sigwait(&sigs, &sig);
    ql_server_stop(server, 5000, NULL), ql_server_free(&server), ql_app_free(&app);
    return 0;
}
