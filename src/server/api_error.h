// Errors the HTTP layer returns, in OpenAI's shape:
//   {"error": {"message": ..., "type": ..., "param": ..., "code": ...}}
// Request parsing throws ApiError; handlers turn it (and EngineError) into a
// response with the right status.
#pragma once

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>

namespace mimo::server {

class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string message, std::string type, std::string param = "", std::string code = "")
      : std::runtime_error(message), status(status), type(std::move(type)), param(std::move(param)),
        code(std::move(code)) {}
  int status;
  std::string type, param, code;
  nlohmann::ordered_json body() const;
};

// 400 invalid_request_error naming the offending field (param may be empty).
ApiError bad_request(const std::string& message, const std::string& param = "");
// 400 for a feature this build does not have, naming the field.
ApiError unsupported(const std::string& param, const std::string& what);

// The status of an EngineError kind (BadRequest 400, QueueFull and
// ShuttingDown 503) and its error object.
ApiError from_engine_error(int kind, const std::string& message);

// JSON text that never throws on invalid UTF-8 (replaced by U+FFFD).
std::string dump_json(const nlohmann::ordered_json& j);

}  // namespace mimo::server
