// A minimal SVG line-chart writer for benchmark plots (no dependencies):
// title, axis labels, linear or log x axis, several series with a legend.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace mimo::bench::svg {

struct Series {
  std::string name;
  std::vector<std::pair<double, double>> pts;  // (x, y), drawn in the given order
};

// A whole SVG document. Non-finite points (and x <= 0 on a log axis) are
// skipped; an empty chart still renders its frame and labels.
std::string line_chart(const std::string& title, const std::string& xlabel, const std::string& ylabel,
                       const std::vector<Series>& series, bool log_x = false);

}  // namespace mimo::bench::svg
