#include "netlayer/core/close_reason.h"

#include "absl/strings/str_cat.h"

namespace netlayer {

const char* KindName(CloseReason::Kind kind) {
  switch (kind) {
    case CloseReason::Kind::kPeerClosed:
      return "peer closed";
    case CloseReason::Kind::kReset:
      return "reset";
    case CloseReason::Kind::kError:
      return "error";
    case CloseReason::Kind::kProtocolError:
      return "protocol error";
    case CloseReason::Kind::kTimeout:
      return "timeout";
    case CloseReason::Kind::kHostDown:
      return "host down";
  }
  return "unknown";
}

std::string CloseReason::ToString() const {
  if (detail_.empty()) return KindName(kind_);
  return absl::StrCat(KindName(kind_), ": ", detail_);
}

absl::Status CloseReason::ToStatus() const {
  return absl::UnavailableError(absl::StrCat("connection closed: ", ToString()));
}

}  // namespace netlayer
