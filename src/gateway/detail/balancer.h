// Load balancing over the endpoints of a pool (docs/gateway.md "Data plane"): round-robin,
// least-connections and rendezvous (consistent) hashing, skipping endpoints that are ejected
// after refusing connections; weighted choice among a route's backends; a per-client token
// bucket. Time comes in as milliseconds so tests use a fake clock.
//
// Thread-safety: EndpointHealth and PoolBalancer use atomics only and are shared between io
// threads; RateLimiter locks a mutex (only routes with a rate limit use one).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gateway/snapshot.h"

namespace berth::gateway::detail {

// Live state of one upstream endpoint ("host:port"), shared by every snapshot that names it so
// that ejections and connection counts survive a swap.
struct EndpointHealth {
  std::atomic<int> active{0};                // exchanges in flight (least_conn)
  std::atomic<int64_t> ejected_until_ms{0};  // refused connections → skipped until then
  std::atomic<int> consecutive_failures{0};

  static constexpr int64_t kBaseEjectMs = 2000;
  static constexpr int64_t kMaxEjectMs = 30000;

  bool Ejected(int64_t now_ms) const {
    return ejected_until_ms.load(std::memory_order_relaxed) > now_ms;
  }
  // A connect failed (refused, unreachable, timed out): eject for 2 s, doubling per
  // consecutive failure up to 30 s.
  void OnConnectFailure(int64_t now_ms);
  void OnConnectSuccess() {
    if (consecutive_failures.load(std::memory_order_relaxed) != 0) {
      consecutive_failures.store(0, std::memory_order_relaxed);
      ejected_until_ms.store(0, std::memory_order_relaxed);
    }
  }
};

uint64_t HashBytes(std::string_view s);

// Picks endpoints of one pool.
class PoolBalancer {
 public:
  PoolBalancer(std::vector<std::shared_ptr<EndpointHealth>> health,
               std::vector<uint64_t> endpoint_keys);
  size_t size() const { return health_.size(); }
  EndpointHealth& health(size_t i) const { return *health_[i]; }

  // An endpoint index, or -1 when the pool is empty or every endpoint is in `tried`. Ejected
  // endpoints are skipped unless all untried ones are ejected (then the least recently
  // ejected... any untried one is tried rather than failing outright). `hash` is used by the
  // hash balances (cookie value or client address hash).
  int Pick(Balance b, uint64_t hash, int64_t now_ms, const std::vector<int>& tried);

 private:
  int PickOnce(Balance b, uint64_t hash, int64_t now_ms, const std::vector<int>& tried,
               bool allow_ejected);

  std::vector<std::shared_ptr<EndpointHealth>> health_;
  std::vector<uint64_t> keys_;  // stable per endpoint, for rendezvous hashing
  std::atomic<uint64_t> rr_{0};
};

// Weighted choice among backends: `weights[i]` of a backend, 0 for one that cannot serve
// (empty pool or weight 0). Returns an index or -1 when every weight is 0. `x` is a counter
// (round-robin spread) or a hash (sticky choice).
int PickWeighted(const std::vector<int>& weights, uint64_t x);

// Token bucket per client key (address): `rate` tokens per second, `burst` capacity.
class RateLimiter {
 public:
  RateLimiter(double rate, int burst);
  bool Allow(std::string_view client, int64_t now_ms);

 private:
  struct Bucket {
    double tokens;
    int64_t last_ms;
  };
  double rate_;
  double burst_;
  std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;  // guarded by mu_
};

}  // namespace berth::gateway::detail
