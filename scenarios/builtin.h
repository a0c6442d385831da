// The built-in scenarios of netlayer-sim (docs/SCENARIOS.md describes each):
//   rpc-faults         clients making concurrent calls against a server under the seed's faults
//   reconnect-backoff  clients with several addresses against servers that come and go; every
//                      attempt checked against the connect schedule
//   smac-stress        messages from 0 bytes to MiBs through chunking, back-pressure and slow
//                      readers
//   tls-rpc            an rpc server requiring client certificates; good and bad clients
//   hostile-peers      a protected rpc server, a good client, and hosts opening misbehaving
//                      connections (garbage, drips, silence, floods, peers that never read)
//   objstore           the ZEO-like object store (apps/objstore): clients with caches running
//                      conflicting transactions under faults and server crash-restarts
//   lock               a lock service on rpc (leases, fencing tokens, a storage host) under
//                      server crashes and freezes, partitions and skewed client clocks
#pragma once

#include "netlayer/sim/scenario.h"

namespace netlayer::scenarios {

// Bugs that can be planted (ScenarioOptions::planted_bug) to prove the invariants catch them.
inline constexpr char kDropFirstByteOfSplitFrame[] = "drop-first-byte-of-split-frame";
// tls-rpc: the server does not ask for client certificates.
inline constexpr char kTlsServerSkipsClientAuth[] = "tls-server-skips-client-auth";
// hostile-peers: the server runs without its protections (handshake deadline, idle timeout,
// max_sessions, hello bound, in-flight bound); the invariants catch it.
inline constexpr char kProtectionsOff[] = "protections-off";
// objstore: the client caches a load reply without checking it against the invalidations
// received while the load was in flight (ZEO issue 155).
inline constexpr char kObjstoreCacheUnchecked[] = "objstore-cache-unchecked";
// objstore: the durable server acknowledges a commit once its record is appended, before the
// sync (ServerOptions::sync_before_acknowledging = false).
inline constexpr char kObjstoreAckBeforeSync[] = "ack-before-sync";
// objstore: the durable server's recovery leaves a torn tail in the log and appends after it
// (ServerOptions::truncate_torn_tail = false).
inline constexpr char kObjstoreNoTornTailTruncate[] = "no-torn-tail-truncate";
// rpc-faults: the client does not fail the calls sent on a connection when it closes (they end
// only at their deadline).
inline constexpr char kKeepCallsOnClose[] = "keep-calls-on-close";
// rpc-faults: a call made while the client is not connected gets no deadline timer.
inline constexpr char kNoDeadlineWhileConnecting[] = "no-deadline-while-connecting";
// hostile-peers: core's ConnectionState reports a peer's close (or reset) that arrives after a
// local Close() (promise 4; the world's promise checker reports it).
inline constexpr char kCloseAfterLocalClose[] = "close-after-local-close";
// reconnect-backoff: the rpc client restarts its reconnect schedule after every drop, even of a
// connection whose handshake never completed.
inline constexpr char kRestartScheduleOnDrop[] = "restart-schedule-on-drop";
// rpc-faults: the server drops a reply it cannot send, silently (no error reply, no close).
inline constexpr char kLoseReplyOnSendFailure[] = "lose-reply-on-send-failure";
// lock: the lock server grants until the holder's connection closes (no leases, no wait after
// a restart); the client counts itself the holder until it sees its connection close.
inline constexpr char kLockWithoutLeases[] = "lock-without-leases";
// objstore: a client keeps its cache unverified across a reconnect: the sync's list of what it
// missed is not applied (ZEO's classic cache-verification bug). Only the history check catches
// it (the scenario's own cache checks are off with it).
inline constexpr char kCacheUnverifiedOnReconnect[] = "cache-unverified-on-reconnect";
// objstore: the server's sync leaves out the first transaction the client missed (an
// off-by-one in Storage::InvalidatedSince): a stale read. Only the history check catches it.
inline constexpr char kSyncMissesFirstTransaction[] = "sync-misses-first-transaction";
// Any scenario: the run aborts at its first event (tests that a sweep survives a crashing run).
inline constexpr char kAbort[] = "abort";

// A registry holding every built-in scenario, in a fixed order.
const sim::ScenarioRegistry& BuiltinScenarios();

std::unique_ptr<sim::Scenario> MakeRpcFaults();
std::unique_ptr<sim::Scenario> MakeReconnectBackoff();
std::unique_ptr<sim::Scenario> MakeSmacStress();
std::unique_ptr<sim::Scenario> MakeTlsRpc();
std::unique_ptr<sim::Scenario> MakeHostilePeers();
std::unique_ptr<sim::Scenario> MakeObjstore();
std::unique_ptr<sim::Scenario> MakeLock();

}  // namespace netlayer::scenarios
