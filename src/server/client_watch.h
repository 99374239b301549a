// Notices a client that closed its connection while its request runs.
// cpp-httplib 0.11 finds out only when it writes the response, so a
// non-streaming request (or a stream still waiting for its first token)
// whose client left would otherwise run to its last token. The watch finds
// the request's socket once (by the addresses and ports the Request
// carries) and peeks at it: end of stream or a reset means the client is
// gone. SGLang aborts such requests the same way (it polls Starlette's
// is_disconnected()).
#pragma once

#include <httplib.h>

#include <chrono>
#include <string>

namespace mimo::server {

class ClientWatch {
 public:
  explicit ClientWatch(const httplib::Request& req);
  // True once the client has closed or reset the connection. Cheap to call
  // in a loop: it looks at the socket at most every 100 ms, and not at all
  // in a request's first 100 ms (most finish before).
  bool gone();

 private:
  std::string remote_addr_;
  int remote_port_, local_port_;
  int fd_ = -2;  // -2: not looked for yet; -1: not found
  bool gone_ = false;
  std::chrono::steady_clock::time_point next_check_;
};

// The connected socket whose peer is remote_addr:remote_port and whose own
// port is local_port, or -1.
int find_connection(const std::string& remote_addr, int remote_port, int local_port);

}  // namespace mimo::server
