// The web page at "/", compiled in from web/index.html.
#include "server/http_util.h"

namespace mimo::server {

const std::string& web_index_html() {
  static const std::string html =
#include "web_index.inc"
      ;
  return html;
}

}  // namespace mimo::server
