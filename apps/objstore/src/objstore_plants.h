// TEST HOOK, not API: a deliberately broken behaviour ("planted bug") of the object store, so
// the simulator's objstore scenario and the loopback history tool (tools/jepsen) can prove that
// their history checks catch it (docs/HISTORY.md). This header is internal (apps/objstore/src,
// not installed, no public header names it); only the built-in scenarios and that tool put it
// on their include path. The plant is off unless SetSyncMissesFirstTransaction(true) is called;
// production code never calls it.
//
// Thread rules: the switch is process-wide (an atomic): a scenario sets it at the start of each
// run (runs of one process are sequential), the tool's server process at its start.
#pragma once

namespace netlayer::objstore::testing {

// Server (Storage::InvalidatedSince): a sync's "invalidated since tid T" leaves out the
// transaction T + 1, an off-by-one: the client keeps the version that transaction replaced.
void SetSyncMissesFirstTransaction(bool on);
bool SyncMissesFirstTransaction();

}  // namespace netlayer::objstore::testing
