// Observability of the data plane: Prometheus counters per route (one slot per io thread, so
// the hot path writes only its own cache lines) and the buffered JSON access log.
//
// Thread-safety: a RouteMetrics slot is written by one io thread only (relaxed atomics, read
// by the scrape); the Metrics registry and AccessLog lock mutexes off the hot path (a slot's
// log buffer lock is never contended except by the writer thread every 200 ms).
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/status.h"

namespace berth::gateway::detail {

// Latency histogram upper bounds, seconds.
inline constexpr std::array<double, 12> kLatencyBounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                          0.05,   0.1,   0.25,   1,     2.5,  10};

inline void Bump(std::atomic<uint64_t>& a, uint64_t v = 1) {
  // Single writer per slot: a plain load+store avoids a locked instruction per request.
  a.store(a.load(std::memory_order_relaxed) + v, std::memory_order_relaxed);
}

struct alignas(64) RouteSlot {
  std::atomic<uint64_t> status[6] = {};  // index status/100 (0 = connection-level failure)
  std::atomic<uint64_t> bytes_in{0}, bytes_out{0}, upstream_errors{0};
  std::atomic<uint64_t> latency[kLatencyBounds.size() + 1] = {};
  std::atomic<uint64_t> latency_sum_us{0};
};

// Counters of one route (or "" for requests that matched none), kept across snapshot swaps.
struct RouteMetrics {
  RouteMetrics(std::string kind, std::string route, std::string team, std::string app,
               std::string component, int slots);
  void Record(int slot, int status, uint64_t in, uint64_t out, uint64_t micros);
  void UpstreamError(int slot) { Bump(slots[slot].upstream_errors); }

  std::string kind, route, team, app, component;
  std::unique_ptr<RouteSlot[]> slots;
  int nslots;
};

class Metrics {
 public:
  explicit Metrics(int slots);
  // The counters for a route id, created on first use.
  std::shared_ptr<RouteMetrics> ForRoute(const std::string& kind, const std::string& id,
                                         const std::string& team, const std::string& app,
                                         const std::string& component);
  RouteMetrics& unmatched() { return *unmatched_; }
  std::atomic<int64_t>& active(int slot) { return active_[slot].v; }
  std::atomic<int64_t> revision{0};
  // Prometheus text exposition format 0.0.4.
  std::string Render() const;

 private:
  struct alignas(64) Gauge {
    std::atomic<int64_t> v{0};
  };
  int nslots_;
  std::unique_ptr<Gauge[]> active_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<RouteMetrics>> routes_;  // guarded by mu_
  std::shared_ptr<RouteMetrics> unmatched_;
};

// JSON access log: io threads append lines to their slot's buffer; a writer thread moves full
// buffers (and every 200 ms, whatever is there) to the file, so io threads never wait on disk.
class AccessLog {
 public:
  // path "-" = stdout.
  static Result<std::unique_ptr<AccessLog>> Open(const std::string& path, int slots);
  ~AccessLog();
  void Append(int slot, std::string_view line);

 private:
  AccessLog(FILE* f, bool owned, int slots);
  void WriterLoop();
  struct alignas(64) Slot {
    std::mutex mu;
    std::string buf;  // guarded by mu
  };
  FILE* file_;
  bool owned_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;     // guarded by mu_
  bool pending_ = false;  // guarded by mu_: a slot crossed the flush size
  std::thread writer_;
};

// Appends `s` to `out` as JSON string content (no quotes).
void AppendJsonEscaped(std::string* out, std::string_view s);

}  // namespace berth::gateway::detail
