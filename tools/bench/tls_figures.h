// TLS figures (issue 15): the smac runners over TLS-wrapped factories.
#pragma once

#include "netlayer_figures.h"

namespace netlayer::bench {

// Factories that wrap each of `plain`'s in TLS 1.3 with mutual authentication (a CA and two
// certificates made at run time). The TLS connections' lifetime keeps the plain factories alive.
FactoriesMaker TlsOver(FactoriesMaker plain);

}  // namespace netlayer::bench
