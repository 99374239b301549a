#include "server/logprobs_json.h"

#include <cmath>

namespace mimo::server {

namespace {

// -inf is not JSON; OpenAI clients expect a number, so use the most negative float.
double finite(float lp) { return std::isfinite(lp) ? double(lp) : -9999.0; }

}  // namespace

std::string token_text(const Tokenizer* tok, int32_t id) {
  if (!tok) return "<" + std::to_string(id) + ">";
  int32_t one[1] = {id};
  return tok->decode(one, false);
}

ojson token_bytes(const Tokenizer* tok, int32_t id) {
  ojson b = ojson::array();
  if (!tok) return b;
  for (unsigned char c : tok->token_bytes(id)) b.push_back(int(c));
  return b;
}

ojson chat_logprobs_content(const std::vector<TokenLogprob>& lps, const Tokenizer* tok, int top_n) {
  ojson out = ojson::array();
  for (const TokenLogprob& lp : lps) {
    ojson e;
    e["token"] = token_text(tok, lp.token);
    e["logprob"] = finite(lp.logprob);
    e["bytes"] = token_bytes(tok, lp.token);
    ojson top = ojson::array();
    for (size_t k = 0; k < lp.top.size() && int(k) < top_n; k++)
      top.push_back({{"token", token_text(tok, lp.top[k].first)},
                     {"logprob", finite(lp.top[k].second)},
                     {"bytes", token_bytes(tok, lp.top[k].first)}});
    e["top_logprobs"] = top;
    out.push_back(e);
  }
  return out;
}

void append_completion_logprobs(ojson& lp, const std::vector<TokenLogprob>& lps, const Tokenizer* tok, int top_n,
                                size_t* text_offset) {
  if (lp.is_null())
    lp = {{"tokens", ojson::array()}, {"token_logprobs", ojson::array()}, {"top_logprobs", ojson::array()},
          {"text_offset", ojson::array()}};
  for (const TokenLogprob& t : lps) {
    std::string s = token_text(tok, t.token);
    lp["tokens"].push_back(s);
    lp["token_logprobs"].push_back(finite(t.logprob));
    ojson top = ojson::object();
    for (size_t k = 0; k < t.top.size() && int(k) < top_n; k++)
      top[token_text(tok, t.top[k].first)] = finite(t.top[k].second);
    lp["top_logprobs"].push_back(top);
    lp["text_offset"].push_back(*text_offset);
    *text_offset += s.size();
  }
}

void append_native_logprobs(ojson& token_lps, ojson& top_lps, const std::vector<TokenLogprob>& lps,
                            const Tokenizer* tok, int top_n) {
  for (const TokenLogprob& t : lps) {
    token_lps.push_back({finite(t.logprob), t.token, tok ? ojson(token_text(tok, t.token)) : ojson()});
    ojson top = ojson::array();
    for (size_t k = 0; k < t.top.size() && int(k) < top_n; k++)
      top.push_back({finite(t.top[k].second), t.top[k].first,
                     tok ? ojson(token_text(tok, t.top[k].first)) : ojson()});
    top_lps.push_back(top);
  }
}

}  // namespace mimo::server
