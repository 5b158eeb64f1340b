// Limits failed login attempts: at most `max_failures` per key (client address + user name)
// within `window`, 4x that per client address alone (spraying many users from one address)
// and 4x that per user name from any address (guessing one user's password from many
// addresses — every 127.x.y.z is a client address of its own). The last one lets anybody hold
// a user's logins back for up to `window`: the price of not letting a botnet guess freely.
// Thread-safety: thread-safe (one mutex).
#pragma once

#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <string>

#include "core/clock.h"

namespace berth::auth {

class LoginRateLimiter {
 public:
  LoginRateLimiter(const Clock& clock, int max_failures,
                   std::chrono::seconds window = std::chrono::seconds(60));

  // Seconds until the next attempt is allowed for (address, user); 0 = allowed now.
  int RetryAfterSeconds(const std::string& address, const std::string& user);
  void RecordFailure(const std::string& address, const std::string& user);
  void RecordSuccess(const std::string& address, const std::string& user);

 private:
  int CheckLocked(std::deque<TimePoint>& q, int limit, TimePoint now);

  const Clock& clock_;
  const int max_failures_;
  const std::chrono::seconds window_;
  std::mutex mu_;
  std::map<std::string, std::deque<TimePoint>> by_user_;     // guarded by mu_
  std::map<std::string, std::deque<TimePoint>> by_address_;  // guarded by mu_
  std::map<std::string, std::deque<TimePoint>> by_account_;  // guarded by mu_
};

}  // namespace berth::auth
