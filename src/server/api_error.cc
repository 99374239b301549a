#include "server/api_error.h"

#include "engine/engine.h"

namespace mimo::server {

nlohmann::ordered_json ApiError::body() const {
  nlohmann::ordered_json e;
  e["message"] = what();
  e["type"] = type;
  e["param"] = param.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(param);
  e["code"] = code.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(code);
  return {{"error", e}};
}

ApiError bad_request(const std::string& message, const std::string& param) {
  return ApiError(400, message, "invalid_request_error", param);
}

ApiError unsupported(const std::string& param, const std::string& what) {
  return ApiError(400, "'" + param + "' is not supported by this server: " + what, "invalid_request_error", param,
                  "unsupported_parameter");
}

ApiError from_engine_error(int kind, const std::string& message) {
  switch (kind) {
    case EngineError::QueueFull:
      return ApiError(503, message, "service_unavailable_error", "", "queue_full");
    case EngineError::ShuttingDown:
      return ApiError(503, message, "service_unavailable_error", "", "shutting_down");
    default:
      return ApiError(400, message, "invalid_request_error");
  }
}

std::string dump_json(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace mimo::server
