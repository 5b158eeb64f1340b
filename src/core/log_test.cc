#include "core/log.h"

#include <stdio.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

namespace berth {
namespace {

TEST(LogTest, EscapeForLogKeepsTextAndEscapesControlBytes) {
  EXPECT_EQ(EscapeForLog("plain key=value"), "plain key=value");
  EXPECT_EQ(EscapeForLog("caf\xc3\xa9 \xe4\xb8\xad"), "caf\xc3\xa9 \xe4\xb8\xad");  // valid UTF-8
  EXPECT_EQ(EscapeForLog("a\nb\rc\td"), "a\\nb\\rc\\td");
  EXPECT_EQ(EscapeForLog(std::string("x\0y", 3)), "x\\x00y");
  EXPECT_EQ(EscapeForLog("\x1b[31mred\x7f"), "\\x1b[31mred\\x7f");
  EXPECT_EQ(EscapeForLog("back\\slash"), "back\\\\slash");
  // Invalid UTF-8: a lone continuation byte, a truncated sequence, an overlong '/', a
  // surrogate.
  EXPECT_EQ(EscapeForLog("\xff\x80"), "\\xff\\x80");
  EXPECT_EQ(EscapeForLog("\xe4\xb8"), "\\xe4\\xb8");
  EXPECT_EQ(EscapeForLog("\xc0\xaf"), "\\xc0\\xaf");
  EXPECT_EQ(EscapeForLog("\xed\xa0\x80"), "\\xed\\xa0\\x80");
}

// What a logger writes for a message with a forged second line: one line, escaped.
TEST(LogTest, LoggersWriteOneLinePerMessage) {
  char path[] = "/tmp/berth-log-test-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  fflush(stderr);
  int saved = ::dup(2);
  ::dup2(fd, 2);
  auto log = Logger("logtest");
  log->warn("msg=\"request failed\" path=\"{}\"",
            std::string("/api/v1/hooks/\xff\n2030-01-01T00:00:00.000Z I api msg=\"forged\""));
  log->flush();
  ::dup2(saved, 2);
  ::close(saved);
  ::close(fd);
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  ::unlink(path);
  std::string text = ss.str();
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
  EXPECT_NE(text.find("/api/v1/hooks/\\xff\\n2030-01-01"), std::string::npos) << text;
  EXPECT_NE(text.find(" W logtest msg="), std::string::npos) << text;
}

}  // namespace
}  // namespace berth
