// Time as berth sees it: an injectable clock (tests move time without sleeping) and the one
// timestamp format used in the API and the store (RFC 3339, UTC, millisecond precision).
// Thread-safety: SystemClock is stateless; FakeClockForTest is internally locked.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace berth {

using TimePoint = std::chrono::system_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
};

class SystemClock final : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::system_clock::now(); }
  static const Clock& Get();
};

class FakeClockForTest final : public Clock {
 public:
  explicit FakeClockForTest(TimePoint t = TimePoint{}) : now_(t) {}
  TimePoint Now() const override {
    std::lock_guard<std::mutex> l(mu_);
    return now_;
  }
  void Advance(std::chrono::milliseconds d) {
    std::lock_guard<std::mutex> l(mu_);
    now_ += d;
  }

 private:
  mutable std::mutex mu_;
  TimePoint now_;  // guarded by mu_
};

// "2026-11-23T11:18:26.123Z"
std::string FormatTime(TimePoint t);
// Milliseconds since the Unix epoch.
int64_t UnixMillis(TimePoint t);
TimePoint FromUnixMillis(int64_t ms);

}  // namespace berth
