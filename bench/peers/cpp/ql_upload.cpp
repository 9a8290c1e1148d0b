// quicklane C++ server of bench/run's upload scenario: POST /upload is a
// route_stream route (the body arrives in a BodySink on the loop thread, the
// core's window bounds memory) and GET /ping a native static route.
//   UPLOAD_HASH=count  (default) the body's bytes are only counted: the row
//                      paired with bench/peers/c/upload_raw.c, which counts too
//   UPLOAD_HASH=sha256 each chunk also goes through OpenSSL's SHA-256 (EVP),
//                      as the Python handlers hash theirs with hashlib
// Answers 200 {"bytes":N} (+ "sha256":"<hex>"). Built by bench/run:
//   g++ -O2 -std=c++20 -I capi/include -I bindings/cpp/include ql_upload.cpp -L build -lquicklane -lcrypto
//   PORT=8080 WORKERS=1 ./ql_upload
#include <openssl/evp.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <quicklane.hpp>
#include <string>

namespace q = quicklane;

namespace {

struct Upload {
    std::uint64_t bytes = 0;
    EVP_MD_CTX* sha = nullptr;  // null: count only
    ~Upload() { EVP_MD_CTX_free(sha); }
};

unsigned env_or(const char* name, unsigned fallback) {
    const char* v = std::getenv(name);
    return v && *v ? static_cast<unsigned>(std::strtoul(v, nullptr, 10)) : fallback;
}

}  // namespace

int main() try {
    q::block_signals();
    const char* mode = std::getenv("UPLOAD_HASH");
    const bool hash = mode && std::strcmp(mode, "sha256") == 0;

    q::App app;
    app.static_route("GET", "/ping", q::Response::json(R"({"message":"pong"})"));
    app.route_stream("POST", "/upload", [hash](q::Request&, q::Responder res) {
        auto up = std::make_shared<Upload>();
        if (hash) {
            up->sha = EVP_MD_CTX_new();
            EVP_DigestInit_ex(up->sha, EVP_sha256(), nullptr);
        }
        return q::BodySink{
            .on_data =
                [up](std::string_view d) {
                    up->bytes += d.size();
                    if (up->sha) EVP_DigestUpdate(up->sha, d.data(), d.size());
                },
            .on_end =
                [up, res] {
                    std::string body = "{\"bytes\":" + std::to_string(up->bytes);
                    if (up->sha) {
                        unsigned char md[EVP_MAX_MD_SIZE];
                        unsigned len = 0;
                        EVP_DigestFinal_ex(up->sha, md, &len);
                        char hex[2 * EVP_MAX_MD_SIZE + 1];
                        for (unsigned i = 0; i < len; i++) std::snprintf(hex + 2 * i, 3, "%02x", md[i]);
                        body += ",\"sha256\":\"" + std::string(hex, 2 * len) + "\"";
                    }
                    res.send(q::Response::json(body + "}"));
                },
            .on_error = [](q::Status st) { std::cerr << "upload failed: " << q::status_name(st) << "\n"; },
        };
    });

    q::Server server(app, {.port = static_cast<std::uint16_t>(env_or("PORT", 8080)), .workers = env_or("WORKERS", 1)});
    server.start();
    std::cout << "quicklane C++ upload server (" << (hash ? "sha256" : "count") << ") on http://127.0.0.1:"
              << server.port() << std::endl;
    q::wait_for_signal();
    server.stop(5000);
    return 0;
} catch (const q::Error& e) {
    std::cerr << "quicklane: " << e.what() << " (" << q::status_name(e.code()) << ")\n";
    return 1;
}
