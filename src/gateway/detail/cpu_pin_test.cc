#include "gateway/detail/cpu_pin.h"

#include <gtest/gtest.h>

namespace berth::gateway::detail {
namespace {

using V = std::vector<int>;

TEST(PinPlan, AutoPinsOnlyWithOneThreadPerAllowedCpu) {
  EXPECT_EQ(PinPlan(PinMode::kAuto, V{0, 1}, 2), (V{0, 1}));
  // A restricted affinity mask (taskset, a cpuset): the threads follow the CPUs allowed.
  EXPECT_EQ(PinPlan(PinMode::kAuto, V{2, 5}, 2), (V{2, 5}));
  // More CPUs than threads: the threads stay free to leave a busy core.
  EXPECT_EQ(PinPlan(PinMode::kAuto, V{0, 1, 2, 3}, 2), V{});
  // Fewer CPUs than threads: two threads would share a pinned core.
  EXPECT_EQ(PinPlan(PinMode::kAuto, V{0}, 2), V{});
  EXPECT_EQ(PinPlan(PinMode::kAuto, V{}, 2), V{});
}

TEST(PinPlan, OnPinsWheneverThereAreEnoughCpus) {
  EXPECT_EQ(PinPlan(PinMode::kOn, V{0, 1, 2, 3}, 2), (V{0, 1}));
  EXPECT_EQ(PinPlan(PinMode::kOn, V{3}, 1), (V{3}));
  EXPECT_EQ(PinPlan(PinMode::kOn, V{0}, 2), V{});
}

TEST(PinPlan, OffNeverPins) {
  EXPECT_EQ(PinPlan(PinMode::kOff, V{0, 1}, 2), V{});
  EXPECT_EQ(PinPlan(PinMode::kOff, V{0, 1, 2}, 1), V{});
}

TEST(PinPlan, AllowedCpusListsThisProcess) {
  V cpus = AllowedCpus();
  ASSERT_FALSE(cpus.empty());
  for (size_t i = 1; i < cpus.size(); ++i) EXPECT_LT(cpus[i - 1], cpus[i]);
}

TEST(PinMode, ParsesNamesAndFlagValues) {
  PinMode m = PinMode::kOff;
  ASSERT_TRUE(ParsePinMode("auto", &m));
  EXPECT_EQ(m, PinMode::kAuto);
  ASSERT_TRUE(ParsePinMode("on", &m));
  EXPECT_EQ(m, PinMode::kOn);
  ASSERT_TRUE(ParsePinMode("1", &m));
  EXPECT_EQ(m, PinMode::kOn);
  ASSERT_TRUE(ParsePinMode("false", &m));
  EXPECT_EQ(m, PinMode::kOff);
  EXPECT_FALSE(ParsePinMode("yes please", &m));
  EXPECT_FALSE(ParsePinMode("", &m));
  EXPECT_EQ(m, PinMode::kOff);  // unchanged by a refused value
  EXPECT_STREQ(PinModeName(PinMode::kAuto), "auto");
}

}  // namespace
}  // namespace berth::gateway::detail
