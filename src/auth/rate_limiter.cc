#include "auth/rate_limiter.h"

#include <algorithm>

namespace berth::auth {

LoginRateLimiter::LoginRateLimiter(const Clock& clock, int max_failures,
                                   std::chrono::seconds window)
    : clock_(clock), max_failures_(max_failures), window_(window) {}

int LoginRateLimiter::CheckLocked(std::deque<TimePoint>& q, int limit, TimePoint now) {
  while (!q.empty() && q.front() + window_ <= now) q.pop_front();
  if (static_cast<int>(q.size()) < limit) return 0;
  auto wait = std::chrono::duration_cast<std::chrono::seconds>(q.front() + window_ - now).count();
  return static_cast<int>(wait) + 1;
}

int LoginRateLimiter::RetryAfterSeconds(const std::string& address, const std::string& user) {
  std::lock_guard<std::mutex> l(mu_);
  TimePoint now = clock_.Now();
  int a = CheckLocked(by_user_[address + "|" + user], max_failures_, now);
  int b = CheckLocked(by_address_[address], max_failures_ * 4, now);
  int c = CheckLocked(by_account_[user], max_failures_ * 4, now);
  return std::max({a, b, c});
}

void LoginRateLimiter::RecordFailure(const std::string& address, const std::string& user) {
  std::lock_guard<std::mutex> l(mu_);
  TimePoint now = clock_.Now();
  by_user_[address + "|" + user].push_back(now);
  by_address_[address].push_back(now);
  by_account_[user].push_back(now);
  // Bound memory: forget keys whose failures have all expired.
  for (auto* m : {&by_user_, &by_address_, &by_account_}) {
    if (m->size() <= 10000) continue;
    for (auto it = m->begin(); it != m->end();) {
      CheckLocked(it->second, max_failures_ * 4, now);
      it = it->second.empty() ? m->erase(it) : std::next(it);
    }
  }
}

void LoginRateLimiter::RecordSuccess(const std::string& address, const std::string& user) {
  std::lock_guard<std::mutex> l(mu_);
  by_user_.erase(address + "|" + user);
  by_account_.erase(user);
}

}  // namespace berth::auth
