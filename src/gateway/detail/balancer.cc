#include "gateway/detail/balancer.h"

#include <algorithm>
#include <cmath>

namespace berth::gateway::detail {
namespace {

bool Tried(const std::vector<int>& tried, int i) {
  return std::find(tried.begin(), tried.end(), i) != tried.end();
}

uint64_t Mix(uint64_t x) {
  // splitmix64 finalizer: spreads a combined key over 64 bits for rendezvous scores.
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

uint64_t HashBytes(std::string_view s) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return Mix(h);
}

void EndpointHealth::OnConnectFailure(int64_t now_ms) {
  int n = consecutive_failures.fetch_add(1, std::memory_order_relaxed);
  int64_t backoff = kBaseEjectMs << std::min(n, 4);
  ejected_until_ms.store(now_ms + std::min(backoff, kMaxEjectMs), std::memory_order_relaxed);
}

PoolBalancer::PoolBalancer(std::vector<std::shared_ptr<EndpointHealth>> health,
                           std::vector<uint64_t> endpoint_keys)
    : health_(std::move(health)), keys_(std::move(endpoint_keys)) {}

int PoolBalancer::Pick(Balance b, uint64_t hash, int64_t now_ms, const std::vector<int>& tried) {
  int i = PickOnce(b, hash, now_ms, tried, /*allow_ejected=*/false);
  if (i < 0) i = PickOnce(b, hash, now_ms, tried, /*allow_ejected=*/true);
  return i;
}

int PoolBalancer::PickOnce(Balance b, uint64_t hash, int64_t now_ms, const std::vector<int>& tried,
                           bool allow_ejected) {
  const int n = static_cast<int>(health_.size());
  if (n == 0) return -1;
  auto usable = [&](int i) {
    return !Tried(tried, i) && (allow_ejected || !health_[i]->Ejected(now_ms));
  };
  switch (b) {
    case Balance::kRoundRobin: {
      uint64_t start = rr_.fetch_add(1, std::memory_order_relaxed);
      for (int k = 0; k < n; ++k) {
        int i = static_cast<int>((start + k) % n);
        if (usable(i)) return i;
      }
      return -1;
    }
    case Balance::kLeastConn: {
      // Ties rotate so equal endpoints share the load.
      uint64_t start = rr_.fetch_add(1, std::memory_order_relaxed);
      int best = -1, best_active = 0;
      for (int k = 0; k < n; ++k) {
        int i = static_cast<int>((start + k) % n);
        if (!usable(i)) continue;
        int a = health_[i]->active.load(std::memory_order_relaxed);
        if (best < 0 || a < best_active) {
          best = i;
          best_active = a;
        }
      }
      return best;
    }
    case Balance::kHashCookie:
    case Balance::kHashIp: {
      // Rendezvous hashing: the endpoint with the highest score for this key; removing an
      // endpoint moves only the keys it had.
      int best = -1;
      uint64_t best_score = 0;
      for (int i = 0; i < n; ++i) {
        if (!usable(i)) continue;
        uint64_t score = Mix(hash ^ keys_[i]);
        if (best < 0 || score > best_score) {
          best = i;
          best_score = score;
        }
      }
      return best;
    }
  }
  return -1;
}

int PickWeighted(const std::vector<int>& weights, uint64_t x) {
  uint64_t total = 0;
  for (int w : weights) total += static_cast<uint64_t>(std::max(w, 0));
  if (total == 0) return -1;
  uint64_t point = x % total;
  for (size_t i = 0; i < weights.size(); ++i) {
    uint64_t w = static_cast<uint64_t>(std::max(weights[i], 0));
    if (point < w) return static_cast<int>(i);
    point -= w;
  }
  return -1;
}

RateLimiter::RateLimiter(double rate, int burst)
    : rate_(rate), burst_(burst > 0 ? burst : std::max(1.0, std::ceil(rate))) {}

bool RateLimiter::Allow(std::string_view client, int64_t now_ms) {
  std::lock_guard<std::mutex> l(mu_);
  if (buckets_.size() > 100000) {
    // Bounded memory under many clients: forget buckets that have refilled.
    for (auto it = buckets_.begin(); it != buckets_.end();) {
      double t = it->second.tokens + (now_ms - it->second.last_ms) * rate_ / 1000.0;
      it = t >= burst_ ? buckets_.erase(it) : std::next(it);
    }
  }
  auto [it, fresh] = buckets_.try_emplace(std::string(client), Bucket{burst_, now_ms});
  Bucket& b = it->second;
  if (!fresh && now_ms > b.last_ms) {
    b.tokens = std::min(burst_, b.tokens + (now_ms - b.last_ms) * rate_ / 1000.0);
    b.last_ms = now_ms;
  }
  if (b.tokens < 1.0) return false;
  b.tokens -= 1.0;
  return true;
}

}  // namespace berth::gateway::detail
