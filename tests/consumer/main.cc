// Uses the installed headers by their namespaced paths; a user's own core/... cannot collide.
#include <cstdio>

#include "netlayer/core/address.h"
#include "netlayer/core/connect_schedule.h"

int main() {
  auto address = netlayer::Address::Parse("[::1]:8100");
  if (!address.ok()) return 1;
  auto schedule = netlayer::ConnectSchedule::Create({*address}, netlayer::ConnectOptions{});
  if (!schedule.ok()) return 1;
  std::printf("consumer ok: %s\n", address->ToString().c_str());
  return 0;
}
