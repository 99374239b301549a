#include "server/client_watch.h"

#include <dirent.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdlib>

namespace mimo::server {

namespace {

constexpr auto kInterval = std::chrono::milliseconds(100);

int port_of(const sockaddr_storage& a) {
  if (a.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(a).sin_port);
  if (a.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(a).sin6_port);
  return -1;
}

}  // namespace

int find_connection(const std::string& remote_addr, int remote_port, int local_port) {
  // The process's open descriptors; httplib keeps the request's socket
  // open until its handler returns.
  DIR* dir = opendir("/proc/self/fd");
  if (!dir) return -1;
  int found = -1;
  while (dirent* e = readdir(dir)) {
    char* end = nullptr;
    const long fd = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0') continue;
    sockaddr_storage peer{}, self{};
    socklen_t peer_len = sizeof peer, self_len = sizeof self;
    if (getpeername(int(fd), reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0 ||
        getsockname(int(fd), reinterpret_cast<sockaddr*>(&self), &self_len) != 0)
      continue;
    if (port_of(peer) != remote_port || port_of(self) != local_port) continue;
    // httplib names the peer the same way (getnameinfo, numeric host).
    char host[NI_MAXHOST];
    if (getnameinfo(reinterpret_cast<sockaddr*>(&peer), peer_len, host, sizeof host, nullptr, 0, NI_NUMERICHOST) != 0 ||
        remote_addr != host)
      continue;
    found = int(fd);
    break;
  }
  closedir(dir);
  return found;
}

ClientWatch::ClientWatch(const httplib::Request& req)
    : remote_addr_(req.remote_addr),
      remote_port_(req.remote_port),
      local_port_(req.local_port),
      next_check_(std::chrono::steady_clock::now() + kInterval) {}

bool ClientWatch::gone() {
  if (gone_) return true;
  const auto now = std::chrono::steady_clock::now();
  if (now < next_check_) return false;
  next_check_ = now + kInterval;
  if (fd_ == -2) fd_ = find_connection(remote_addr_, remote_port_, local_port_);
  if (fd_ < 0) return false;
  // Pipelined bytes of a next request read as "still there"; only the end
  // of the stream or an error says the client left.
  char c;
  const ssize_t n = recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  gone_ = n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
  return gone_;
}

}  // namespace mimo::server
