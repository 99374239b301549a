// Test helpers for src/chat: the shared feature-case table and a bridge to
// Python's jinja2 (src/chat/tools/render_jinja.py) for byte-for-byte checks.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace mimo::chat_test {

using json = nlohmann::ordered_json;

struct JinjaCase {
  const char* name;
  const char* tmpl;
  const char* context;    // JSON; nullptr means kDefaultContext
  const char* expected;   // nullptr means rendering must fail
  const char* error_has;  // for failures: a substring of our message
};

inline const char* kDefaultContext =
    R"({"x": -3, "d": {"a": 1, "b": [1, 2]}, "s": "Hello World", "n": null,
        "msgs": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]})";

inline const std::vector<JinjaCase>& jinja_cases() {
  static const std::vector<JinjaCase> cases = {
#include "chat/jinja_cases.inc"
  };
  return cases;
}

inline json case_context(const JinjaCase& c) { return json::parse(c.context ? c.context : kDefaultContext); }

inline std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

struct PyResult {
  bool ok = false;
  std::string text;  // rendered text, or "Type: message"
};

// Runs render_jinja.py on a request ({"template", "contexts"} or {"jobs"}).
// Fails the test (and returns {}) when /usr/bin/python3 or jinja2 is missing.
inline std::vector<PyResult> run_python(const json& req, size_t expected_count) {
  const char* python = "/usr/bin/python3";
  const std::string script = std::string(MIMOSERVE_SOURCE_DIR) + "/src/chat/tools/render_jinja.py";
  if (access(python, X_OK) != 0) {
    ADD_FAILURE() << python << " is missing: the jinja2 comparison tests need Debian's python3 and python3-jinja2 "
                  << "(apt-get install -y python3 python3-jinja2)";
    return {};
  }
  char in_path[] = "/tmp/mimo_chat_in_XXXXXX";
  char out_path[] = "/tmp/mimo_chat_out_XXXXXX";
  int in_fd = mkstemp(in_path), out_fd = mkstemp(out_path);
  if (in_fd < 0 || out_fd < 0) {
    ADD_FAILURE() << "cannot create temp files";
    return {};
  }
  close(out_fd);
  std::string body = req.dump();
  bool wrote = write(in_fd, body.data(), body.size()) == ssize_t(body.size());
  close(in_fd);
  std::string cmd = std::string(python) + " " + script + " < " + in_path + " > " + out_path;
  int rc = wrote ? std::system(cmd.c_str()) : -1;
  std::string out = read_text(out_path);
  unlink(in_path);
  unlink(out_path);
  if (rc != 0) {
    int code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    ADD_FAILURE() << (code == 3 ? "Python's jinja2 is missing (apt-get install -y python3-jinja2); "
                                : "render_jinja.py failed; ")
                  << "command: " << cmd << " exit " << code;
    return {};
  }
  std::vector<PyResult> results;
  for (const auto& r : json::parse(out)) {
    PyResult p;
    p.ok = r["ok"].get<bool>();
    p.text = p.ok ? r["text"].get<std::string>() : r["error"].get<std::string>();
    results.push_back(std::move(p));
  }
  if (results.size() != expected_count) ADD_FAILURE() << "render_jinja.py returned " << results.size() << " results";
  return results;
}

// Renders one template with each context through Python's jinja2.
inline std::vector<PyResult> render_python(const std::string& tmpl, const std::vector<json>& contexts) {
  return run_python(json{{"template", tmpl}, {"contexts", contexts}}, contexts.size());
}

// Where two renders first differ, with some context around it.
inline std::string first_difference(const std::string& a, const std::string& b) {
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  size_t from = i > 60 ? i - 60 : 0;
  std::ostringstream ss;
  ss << "first difference at byte " << i << "\n  ours:   ..." << json(a.substr(from, 120)).dump() << "\n  python: ..."
     << json(b.substr(from, 120)).dump();
  return ss.str();
}

}  // namespace mimo::chat_test
