#include "bench/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace mimo::bench::svg {

namespace {

constexpr double kW = 720, kH = 440;
constexpr double kLeft = 72, kRight = 170, kTop = 44, kBottom = 58;  // plot area margins (legend on the right)
const char* const kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '&': o += "&amp;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", v);
  return b;
}

// A tick label: short, without trailing zeros.
std::string label(double v) {
  char b[32];
  if (v != 0 && (std::fabs(v) >= 1e6 || std::fabs(v) < 1e-3)) std::snprintf(b, sizeof b, "%.0e", v);
  else std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}

// "Nice" ticks (1, 2, 5 x 10^k) covering [lo, hi]; widens lo/hi to them.
std::vector<double> nice_ticks(double& lo, double& hi) {
  if (!(hi > lo)) {
    double d = lo == 0 ? 1 : std::fabs(lo) * 0.1;
    lo -= d;
    hi += d;
  }
  double raw = (hi - lo) / 5;
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  lo = std::floor(lo / step) * step;
  hi = std::ceil(hi / step) * step;
  std::vector<double> t;
  for (double v = lo; v <= hi + step * 1e-9; v += step) t.push_back(std::fabs(v) < step * 1e-9 ? 0 : v);
  return t;
}

}  // namespace

std::string line_chart(const std::string& title, const std::string& xlabel, const std::string& ylabel,
                       const std::vector<Series>& series, bool log_x) {
  auto usable = [&](const std::pair<double, double>& p) {
    return std::isfinite(p.first) && std::isfinite(p.second) && (!log_x || p.first > 0);
  };
  double inf = std::numeric_limits<double>::infinity();
  double x0 = inf, x1 = -inf, y0 = inf, y1 = -inf;
  for (const Series& s : series)
    for (const auto& p : s.pts)
      if (usable(p)) {
        double x = log_x ? std::log10(p.first) : p.first;
        x0 = std::min(x0, x);
        x1 = std::max(x1, x);
        y0 = std::min(y0, p.second);
        y1 = std::max(y1, p.second);
      }
  if (x0 > x1) x0 = 0, x1 = 1, y0 = 0, y1 = 1;  // nothing to draw
  std::vector<double> xt;
  if (log_x) {
    x0 = std::floor(x0);
    x1 = std::max(std::ceil(x1), x0 + 1);
    for (double e = x0; e <= x1; e += 1) xt.push_back(e);
  } else {
    xt = nice_ticks(x0, x1);
  }
  std::vector<double> yt = nice_ticks(y0, y1);
  const double pw = kW - kLeft - kRight, ph = kH - kTop - kBottom;
  auto px = [&](double x) { return kLeft + (x - x0) / (x1 - x0) * pw; };
  auto py = [&](double y) { return kTop + ph - (y - y0) / (y1 - y0) * ph; };

  std::string o;
  o += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(kW) + "\" height=\"" + num(kH) +
       "\" viewBox=\"0 0 " + num(kW) + " " + num(kH) + "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  o += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  o += "<text x=\"" + num(kLeft + pw / 2) + "\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">" + esc(title) +
       "</text>\n";
  // Grid and tick labels.
  for (double v : xt) {
    std::string x = num(px(v));
    o += "<line x1=\"" + x + "\" y1=\"" + num(kTop) + "\" x2=\"" + x + "\" y2=\"" + num(kTop + ph) +
         "\" stroke=\"#e0e0e0\"/>\n";
    o += "<text x=\"" + x + "\" y=\"" + num(kTop + ph + 16) + "\" text-anchor=\"middle\">" +
         esc(label(log_x ? std::pow(10.0, v) : v)) + "</text>\n";
  }
  for (double v : yt) {
    std::string y = num(py(v));
    o += "<line x1=\"" + num(kLeft) + "\" y1=\"" + y + "\" x2=\"" + num(kLeft + pw) + "\" y2=\"" + y +
         "\" stroke=\"#e0e0e0\"/>\n";
    o += "<text x=\"" + num(kLeft - 6) + "\" y=\"" + num(py(v) + 4) + "\" text-anchor=\"end\">" + esc(label(v)) +
         "</text>\n";
  }
  o += "<rect x=\"" + num(kLeft) + "\" y=\"" + num(kTop) + "\" width=\"" + num(pw) + "\" height=\"" + num(ph) +
       "\" fill=\"none\" stroke=\"#333\"/>\n";
  o += "<text x=\"" + num(kLeft + pw / 2) + "\" y=\"" + num(kH - 14) + "\" text-anchor=\"middle\">" + esc(xlabel) +
       (log_x ? " (log scale)" : "") + "</text>\n";
  o += "<text transform=\"translate(18," + num(kTop + ph / 2) + ") rotate(-90)\" text-anchor=\"middle\">" +
       esc(ylabel) + "</text>\n";
  // Series and legend.
  for (size_t i = 0; i < series.size(); i++) {
    const char* color = kColors[i % (sizeof kColors / sizeof kColors[0])];
    std::string pts;
    for (const auto& p : series[i].pts)
      if (usable(p)) pts += num(px(log_x ? std::log10(p.first) : p.first)) + "," + num(py(p.second)) + " ";
    if (!pts.empty()) {
      pts.pop_back();
      o += "<polyline fill=\"none\" stroke=\"" + std::string(color) + "\" stroke-width=\"2\" points=\"" + pts +
           "\"/>\n";
    }
    double ly = kTop + 10 + 20 * double(i);
    o += "<line x1=\"" + num(kLeft + pw + 14) + "\" y1=\"" + num(ly) + "\" x2=\"" + num(kLeft + pw + 38) +
         "\" y2=\"" + num(ly) + "\" stroke=\"" + color + "\" stroke-width=\"2\"/>\n";
    o += "<text x=\"" + num(kLeft + pw + 44) + "\" y=\"" + num(ly + 4) + "\">" + esc(series[i].name) + "</text>\n";
  }
  o += "</svg>\n";
  return o;
}

}  // namespace mimo::bench::svg
