// Reads tests/catalogue/cases.txt (format described at the top of that file).
#pragma once

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace qlcat {

struct Case {
    std::string name;
    std::vector<std::string> expect; // one entry per response: "400", "400/413", "4xx"
    bool close = true;
    int handled = 0;
    std::string raw;
    int line = 0;
};

inline int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// \r \n \t \\ \xHH; anything else after a backslash is an error.
inline bool unescape(const std::string &in, std::string &out) {
    for (size_t i = 0; i < in.size(); ++i) {
        char c = in[i];
        if (c != '\\') {
            out.push_back(c);
            continue;
        }
        if (++i >= in.size()) return false;
        switch (in[i]) {
        case 'r': out.push_back('\r'); break;
        case 'n': out.push_back('\n'); break;
        case 't': out.push_back('\t'); break;
        case '\\': out.push_back('\\'); break;
        case 'x': {
            if (i + 2 >= in.size()) return false;
            int h = hexval(in[i + 1]), l = hexval(in[i + 2]);
            if (h < 0 || l < 0) return false;
            out.push_back(static_cast<char>(h * 16 + l));
            i += 2;
            break;
        }
        default: return false;
        }
    }
    return true;
}

// Expands {{N*text}} and the escapes.
inline bool decode_raw(const std::string &in, std::string &out) {
    size_t pos = 0;
    while (pos < in.size()) {
        size_t open = in.find("{{", pos);
        if (open == std::string::npos) return unescape(in.substr(pos), out);
        if (!unescape(in.substr(pos, open - pos), out)) return false;
        size_t star = in.find('*', open);
        size_t close = in.find("}}", open);
        if (star == std::string::npos || close == std::string::npos || star > close) return false;
        int n = std::stoi(in.substr(open + 2, star - open - 2));
        std::string piece;
        if (!unescape(in.substr(star + 1, close - star - 1), piece)) return false;
        for (int i = 0; i < n; ++i) out += piece;
        pos = close + 2;
    }
    return true;
}

inline std::vector<std::string> split(const std::string &s, char sep) {
    std::vector<std::string> out;
    size_t pos = 0;
    while (true) {
        size_t e = s.find(sep, pos);
        out.push_back(s.substr(pos, e == std::string::npos ? std::string::npos : e - pos));
        if (e == std::string::npos) break;
        pos = e + 1;
    }
    return out;
}

// True when `status` satisfies one expectation ("400", "400/413", "4xx", "2xx").
inline bool status_matches(const std::string &expect, int status) {
    for (auto &alt : split(expect, '/')) {
        if (alt.size() == 3 && alt[1] == 'x' && alt[2] == 'x') {
            if (status / 100 == alt[0] - '0') return true;
        } else if (std::to_string(status) == alt) {
            return true;
        }
    }
    return false;
}

// Loads the catalogue; `error` names the first bad line.
inline std::vector<Case> load(const std::string &path, std::string &error) {
    std::vector<Case> out;
    std::ifstream f(path, std::ios::binary);
    if (!f) {
        error = "cannot open " + path;
        return out;
    }
    std::string line;
    int no = 0;
    while (std::getline(f, line)) {
        ++no;
        if (line.empty() || line[0] == '#') continue;
        // name|expect|after|handled|raw -- raw is everything after the fourth '|'
        size_t p[4] = {0, 0, 0, 0};
        size_t at = 0;
        bool ok = true;
        for (int i = 0; i < 4; ++i) {
            p[i] = line.find('|', at);
            if (p[i] == std::string::npos) ok = false;
            if (!ok) break;
            at = p[i] + 1;
        }
        Case c;
        c.line = no;
        if (ok) {
            c.name = line.substr(0, p[0]);
            std::string exp = line.substr(p[0] + 1, p[1] - p[0] - 1);
            std::string after = line.substr(p[1] + 1, p[2] - p[1] - 1);
            std::string handled = line.substr(p[2] + 1, p[3] - p[2] - 1);
            if (exp != "-") c.expect = split(exp, ',');
            ok = (after == "close" || after == "open") && !handled.empty() &&
                 handled.find_first_not_of("0123456789") == std::string::npos;
            if (ok) {
                c.close = after == "close";
                c.handled = std::stoi(handled);
                ok = decode_raw(line.substr(p[3] + 1), c.raw);
            }
        }
        if (!ok) {
            error = path + ":" + std::to_string(no) + ": bad case line";
            return {};
        }
        out.push_back(std::move(c));
    }
    return out;
}

} // namespace qlcat
