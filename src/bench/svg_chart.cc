#include "bench/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <fstream>

#include <fmt/format.h>

#include "core/error.h"

namespace mimo::bench::chart {

namespace {

const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string num(double v) {
  double a = std::fabs(v);
  if (a == 0) return "0";
  if (a >= 1e6 || a < 1e-3) return fmt::format("{:.3g}", v);
  if (a >= 100) return fmt::format("{:.0f}", v);
  std::string s = fmt::format("{:.3f}", v);
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

void panel_svg(std::string& o, const Panel& p, double top, int W, int H) {
  const double ml = 70, mr = 170, mt = 30, mb = 45;
  const double x0 = ml, x1 = W - mr, y0 = top + mt, y1 = top + H - mb;
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  for (auto& s : p.series)
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); i++) {
      if (!std::isfinite(s.y[i]) || !std::isfinite(s.x[i]) || (p.log2_x && s.x[i] <= 0)) continue;
      double x = p.log2_x ? std::log2(s.x[i]) : s.x[i];
      xlo = std::min(xlo, x), xhi = std::max(xhi, x);
      ylo = std::min(ylo, s.y[i]), yhi = std::max(yhi, s.y[i]);
    }
  if (!std::isfinite(xlo)) xlo = 0, xhi = 1, ylo = 0, yhi = 1;
  if (p.y_from_zero) ylo = std::min(ylo, 0.0);
  if (xhi == xlo) xlo -= 0.5, xhi += 0.5;
  if (yhi == ylo) yhi = ylo + 1;
  std::vector<double> yt = nice_ticks(ylo, yhi);
  ylo = std::min(ylo, yt.front());
  yhi = std::max(yhi, yt.back());
  std::vector<double> xt;
  if (p.log2_x) {
    for (int e = int(std::floor(xlo)); e <= int(std::ceil(xhi)); e++)
      if (e >= xlo - 1e-9 && e <= xhi + 1e-9) xt.push_back(e);
  } else {
    xt = nice_ticks(xlo, xhi);
    xlo = std::min(xlo, xt.front());
    xhi = std::max(xhi, xt.back());
  }
  auto X = [&](double x) { return x0 + (x - xlo) / (xhi - xlo) * (x1 - x0); };
  auto Y = [&](double y) { return y1 - (y - ylo) / (yhi - ylo) * (y1 - y0); };
  o += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"14\" font-weight=\"bold\">{}</text>\n", x0,
                   top + 18, esc(p.title));
  o += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"none\" stroke=\"#444\"/>\n",
                   x0, y0, x1 - x0, y1 - y0);
  for (double t : yt) {
    double y = Y(t);
    o += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#ddd\"/>\n", x0, y, x1, y);
    o += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"11\" text-anchor=\"end\">{}</text>\n", x0 - 5,
                     y + 4, num(t));
  }
  for (double t : xt) {
    double x = X(t);
    o += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#ddd\"/>\n", x, y0, x, y1);
    o += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"11\" text-anchor=\"middle\">{}</text>\n", x,
                     y1 + 15, num(p.log2_x ? std::exp2(t) : t));
  }
  o += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"12\" text-anchor=\"middle\">{}</text>\n",
                   (x0 + x1) / 2, y1 + 34, esc(p.x_label + (p.log2_x ? " (log2 scale)" : "")));
  o += fmt::format(
      "<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"12\" text-anchor=\"middle\" "
      "transform=\"rotate(-90 {:.1f} {:.1f})\">{}</text>\n",
      x0 - 52, (y0 + y1) / 2, x0 - 52, (y0 + y1) / 2, esc(p.y_label));
  for (size_t k = 0; k < p.series.size(); k++) {
    const Series& s = p.series[k];
    const char* c = kColors[k % (sizeof kColors / sizeof *kColors)];
    std::string pts;
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); i++) {
      if (!std::isfinite(s.y[i]) || !std::isfinite(s.x[i]) || (p.log2_x && s.x[i] <= 0)) continue;
      double x = X(p.log2_x ? std::log2(s.x[i]) : s.x[i]), y = Y(s.y[i]);
      pts += fmt::format("{:.1f},{:.1f} ", x, y);
      o += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"/>\n", x, y, c);
    }
    if (!pts.empty())
      o += fmt::format("<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{}/>\n", pts, c,
                       s.dashed ? " stroke-dasharray=\"6 4\"" : "");
    double ly = y0 + 12 + 18 * double(k);
    o += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" stroke-width=\"2\"{}/>\n",
                     x1 + 10, ly, x1 + 30, ly, c, s.dashed ? " stroke-dasharray=\"6 4\"" : "");
    o += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"11\">{}</text>\n", x1 + 35, ly + 4, esc(s.name));
  }
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!(hi > lo)) return {lo};
  double raw = (hi - lo) / std::max(1, target);
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  std::vector<double> t;
  for (double v = std::floor(lo / step) * step; v <= hi + step * 0.999; v += step) t.push_back(std::fabs(v) < step * 1e-9 ? 0 : v);
  return t;
}

std::string render(const std::vector<Panel>& panels, int width, int height) {
  std::string o = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" "
      "font-family=\"sans-serif\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
      width, height * int(panels.size()), width, height * int(panels.size()));
  for (size_t i = 0; i < panels.size(); i++) panel_svg(o, panels[i], double(i) * height, width, height);
  o += "</svg>\n";
  return o;
}

void write(const std::string& path, const std::vector<Panel>& panels, int width, int height) {
  std::ofstream f(path);
  if (!f) fail("cannot write the plot to '{}'", path);
  f << render(panels, width, height);
  if (!f) fail("cannot write the plot to '{}'", path);
}

}  // namespace mimo::bench::chart
