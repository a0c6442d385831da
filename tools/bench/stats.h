// Small shared helpers of netlayer-bench's table and comparison.
#pragma once

#include <string>
#include <vector>

namespace netlayer::bench {

// The median of `values` (the mean of the two middle ones for an even count); 0 if empty.
double Median(std::vector<double> values);

// A figure for a table: integers from 100 up with thousands separators ("12,345"), two decimals
// from 1, four below.
std::string FormatValue(double v);

}  // namespace netlayer::bench
