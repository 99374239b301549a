// A small SVG line-chart writer for the bench subcommands' --plot files:
// one or more panels stacked vertically, each with several series, axis
// ticks, labels, a legend and an optional log2 x-axis. No dependencies; the
// output is a self-contained SVG a browser or GitHub renders as is.
#pragma once

#include <string>
#include <vector>

namespace mimo::bench::chart {

struct Series {
  std::string name;
  std::vector<double> x, y;  // same length; points with a non-finite y are skipped
  bool dashed = false;
};

struct Panel {
  std::string title, x_label, y_label;
  std::vector<Series> series;
  bool log2_x = false;   // x ticks at powers of two (every x must be > 0)
  bool y_from_zero = true;
};

inline Series series(std::string name, bool dashed = false) {
  Series s;
  s.name = std::move(name);
  s.dashed = dashed;
  return s;
}
inline Panel panel(std::string title, std::string x_label, std::string y_label, bool log2_x = false) {
  Panel p;
  p.title = std::move(title);
  p.x_label = std::move(x_label);
  p.y_label = std::move(y_label);
  p.log2_x = log2_x;
  return p;
}

// The SVG text of the panels stacked top to bottom, each width x height px.
std::string render(const std::vector<Panel>& panels, int width = 720, int height = 360);
// Writes render(...) to `path`; throws mimo::Error when the file cannot be written.
void write(const std::string& path, const std::vector<Panel>& panels, int width = 720, int height = 360);

// "Nice" tick values covering [lo, hi] (about `target` of them, steps of 1, 2 or 5 x 10^k).
std::vector<double> nice_ticks(double lo, double hi, int target = 5);

}  // namespace mimo::bench::chart
