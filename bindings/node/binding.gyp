# Builds the quicklane addon: the core, the C door and Debian's llhttp C
# sources are compiled INTO the addon with hidden visibility, against Node's
# own headers (its uv.h). libuv is NOT linked: the uv_* symbols resolve from
# the node binary at load time, so the process holds a single libuv.
{
  "variables": {
    "ql_root": "../..",
    "llhttp_dir%": "/usr/share/llhttp",
    "llhttp_include%": "/usr/share/include/llhttp",
    # node-addon-api's include_dir, found (or fetched) by scripts/build.js
    "napi_include%": "",
  },
  "targets": [
    {
      "target_name": "quicklane",
      "sources": [
        "src/addon.cc",
        "src/ws.cc",
        # the core and the C door: core/sources.txt, shared with every build
        "<!@(node scripts/core-sources.js)",
        # gyp cannot take absolute sources: these wrappers #include <api.c> etc.
        # from llhttp_dir (Debian's node-llhttp: /usr/share/llhttp).
        "src/llhttp_api.c",
        "src/llhttp_http.c",
        "src/llhttp_llhttp.c",
      ],
      "include_dirs": [
        "<(napi_include)",
        "<(ql_root)/capi/include",
        "<(ql_root)/core",
        "<(llhttp_include)",
        "<(llhttp_dir)",
      ],
      "defines": [
        "LLHTTP_STRICT_MODE=1",
        "QL_VERSION_STRING=\"<!(node scripts/version.js)\"",
        "NAPI_DISABLE_CPP_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
      ],
      "cflags": ["-fvisibility=hidden", "-O2", "-fPIC"],
      "cflags_c": ["-O3", "-w"],
      "cflags_cc": ["-std=c++20", "-fvisibility-inlines-hidden", "-fexceptions", "-frtti", "-Wall", "-Wextra"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++1y"],
      "ldflags": ["-Wl,--exclude-libs,ALL", "-Wl,--version-script=<(module_root_dir)/src/exports.map"],
      # zlib (Debian's zlib1g-dev) for static files and compression; nettle
      # (nettle-dev) for the WebSocket handshake's SHA-1 and base64.
      "libraries": ["-lz", "-lnettle"],
    }
  ]
}
