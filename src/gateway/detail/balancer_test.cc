#include "gateway/detail/balancer.h"

#include <gtest/gtest.h>

#include <map>

namespace berth::gateway::detail {
namespace {

PoolBalancer Make(int n) {
  std::vector<std::shared_ptr<EndpointHealth>> hs;
  std::vector<uint64_t> keys;
  for (int i = 0; i < n; ++i) {
    hs.push_back(std::make_shared<EndpointHealth>());
    keys.push_back(HashBytes("127.0.0.1:" + std::to_string(1000 + i)));
  }
  return PoolBalancer(std::move(hs), std::move(keys));
}

TEST(Balancer, RoundRobinVisitsEveryEndpointInTurn) {
  auto b = Make(3);
  std::map<int, int> seen;
  for (int i = 0; i < 30; ++i) ++seen[b.Pick(Balance::kRoundRobin, 0, 0, {})];
  EXPECT_EQ(seen.size(), 3u);
  for (auto& [_, n] : seen) EXPECT_EQ(n, 10);
}

TEST(Balancer, EmptyPoolAndAllTried) {
  auto e = Make(0);
  EXPECT_EQ(e.Pick(Balance::kRoundRobin, 0, 0, {}), -1);
  auto b = Make(2);
  EXPECT_EQ(b.Pick(Balance::kLeastConn, 0, 0, {0, 1}), -1);
  EXPECT_EQ(b.Pick(Balance::kHashIp, 7, 0, {0, 1}), -1);
}

TEST(Balancer, LeastConnPrefersIdleEndpoints) {
  auto b = Make(3);
  b.health(0).active = 5;
  b.health(1).active = 1;
  b.health(2).active = 3;
  for (int i = 0; i < 5; ++i) EXPECT_EQ(b.Pick(Balance::kLeastConn, 0, 0, {}), 1);
  EXPECT_EQ(b.Pick(Balance::kLeastConn, 0, 0, {1}), 2);
}

TEST(Balancer, HashIsStickyAndMovesOnlyTheRemovedKeys) {
  auto b = Make(3);
  std::map<uint64_t, int> first;
  for (uint64_t k = 0; k < 300; ++k) {
    uint64_t h = HashBytes("client-" + std::to_string(k));
    first[h] = b.Pick(Balance::kHashCookie, h, 0, {});
    EXPECT_EQ(b.Pick(Balance::kHashCookie, h, 0, {}), first[h]);
  }
  std::map<int, int> spread;
  for (auto& [_, i] : first) ++spread[i];
  for (auto& [_, n] : spread) EXPECT_GT(n, 50);  // roughly even
  // Endpoint 1 ejected: its keys move, everyone else's stay.
  b.health(1).OnConnectFailure(0);
  for (auto& [h, i] : first) {
    int now = b.Pick(Balance::kHashIp, h, 1, {});
    if (i != 1)
      EXPECT_EQ(now, i);
    else
      EXPECT_NE(now, 1);
  }
}

TEST(Balancer, EjectionBacksOffWithAFakeClockAndRecovers) {
  auto b = Make(2);
  int64_t now = 1'000'000;
  b.health(0).OnConnectFailure(now);
  EXPECT_TRUE(b.health(0).Ejected(now + 1));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(b.Pick(Balance::kRoundRobin, 0, now + 100, {}), 1);
  // After the back-off it is tried again.
  EXPECT_FALSE(b.health(0).Ejected(now + EndpointHealth::kBaseEjectMs));
  std::map<int, int> seen;
  for (int i = 0; i < 10; ++i) ++seen[b.Pick(Balance::kRoundRobin, 0, now + 2000, {})];
  EXPECT_EQ(seen.size(), 2u);
  // Consecutive failures double the back-off, capped.
  b.health(0).OnConnectFailure(now);
  EXPECT_TRUE(b.health(0).Ejected(now + 3999));
  EXPECT_FALSE(b.health(0).Ejected(now + 4000));
  for (int i = 0; i < 10; ++i) b.health(0).OnConnectFailure(now);
  EXPECT_TRUE(b.health(0).Ejected(now + EndpointHealth::kMaxEjectMs - 1));
  EXPECT_FALSE(b.health(0).Ejected(now + EndpointHealth::kMaxEjectMs));
  b.health(0).OnConnectSuccess();
  EXPECT_FALSE(b.health(0).Ejected(now));
}

TEST(Balancer, AllEjectedStillTriesRatherThanFailing) {
  auto b = Make(2);
  b.health(0).OnConnectFailure(0);
  b.health(1).OnConnectFailure(0);
  int i = b.Pick(Balance::kRoundRobin, 0, 10, {});
  EXPECT_GE(i, 0);
  EXPECT_EQ(b.Pick(Balance::kRoundRobin, 0, 10, {i}), 1 - i);
}

TEST(Balancer, WeightedChoiceFollowsWeights) {
  std::vector<int> w = {90, 10};
  int counts[2] = {0, 0};
  for (uint64_t x = 0; x < 1000; ++x) ++counts[PickWeighted(w, x)];
  EXPECT_EQ(counts[0], 900);
  EXPECT_EQ(counts[1], 100);
  EXPECT_EQ(PickWeighted({0, 5}, 3), 1);  // an empty pool (weight 0) gets nothing
  EXPECT_EQ(PickWeighted({0, 0}, 3), -1);
  EXPECT_EQ(PickWeighted({}, 3), -1);
}

TEST(RateLimiter, BucketPerClientWithFakeTime) {
  RateLimiter r(2.0, 3);  // 2/s, burst 3
  int64_t t = 5000;
  EXPECT_TRUE(r.Allow("a", t));
  EXPECT_TRUE(r.Allow("a", t));
  EXPECT_TRUE(r.Allow("a", t));
  EXPECT_FALSE(r.Allow("a", t));
  EXPECT_TRUE(r.Allow("b", t));  // another client has its own bucket
  EXPECT_FALSE(r.Allow("a", t + 400));
  EXPECT_TRUE(r.Allow("a", t + 500));  // one token after 500 ms
  EXPECT_FALSE(r.Allow("a", t + 500));
  RateLimiter d(1.5, 0);  // burst defaults to ceil(rate)
  EXPECT_TRUE(d.Allow("x", 0));
  EXPECT_TRUE(d.Allow("x", 0));
  EXPECT_FALSE(d.Allow("x", 0));
}

}  // namespace
}  // namespace berth::gateway::detail
