#include "gateway/request_rules.h"

#include <gtest/gtest.h>

#include <string>

#include "gateway/gateway.h"

namespace berth::gateway {
namespace {

TransferCodings Codings(std::initializer_list<std::string_view> lines) {
  TransferCodingList l;
  for (auto v : lines) l.Add(v);
  return l.Verdict();
}

TEST(RequestRulesTest, TransferCodings) {
  EXPECT_EQ(Codings({"chunked"}), TransferCodings::kChunked);
  EXPECT_EQ(Codings({" Chunked\t"}), TransferCodings::kChunked);
  EXPECT_EQ(Codings({", chunked ,"}), TransferCodings::kChunked);
  EXPECT_EQ(Codings({"gzip"}), TransferCodings::kNotFinal);
  EXPECT_EQ(Codings({"chunked, gzip"}), TransferCodings::kNotFinal);
  EXPECT_EQ(Codings({""}), TransferCodings::kNotFinal);
  EXPECT_EQ(Codings({"chunked;q=1"}), TransferCodings::kNotFinal);
  EXPECT_EQ(Codings({"chunked", "gzip"}), TransferCodings::kNotFinal);
  EXPECT_EQ(Codings({"chunked, chunked"}), TransferCodings::kChunkedTwice);
  EXPECT_EQ(Codings({"gzip, chunked"}), TransferCodings::kUnsupported);
  EXPECT_EQ(Codings({"gzip", "chunked"}), TransferCodings::kUnsupported);
}

TEST(RequestRulesTest, HostValues) {
  for (std::string_view ok : {"", "a", "web.shop.localhost", "web.shop.localhost:8080",
                              "127.0.0.1:80", "[::1]", "[::1]:8443", "a-b_c~d", "x:"}) {
    EXPECT_TRUE(ValidHostValue(ok)) << ok;
  }
  for (std::string_view bad : {"u@a", "a/b", "a b", "a:8o", "a:123456", ":80", "[::1", "[]",
                               "[zz]", "[::1]x", "a\x01", "\xc3\xa9.com", "a?b", "a#b"}) {
    EXPECT_FALSE(ValidHostValue(bad)) << bad;
  }
}

TEST(RequestRulesTest, AbsoluteTargets) {
  std::string_view a, o;
  ASSERT_TRUE(SplitAbsoluteTarget("http://b.example.com:8080/x?y=1", &a, &o));
  EXPECT_EQ(a, "b.example.com:8080");
  EXPECT_EQ(o, "/x?y=1");
  ASSERT_TRUE(SplitAbsoluteTarget("HTTPS://b.example.com", &a, &o));
  EXPECT_EQ(a, "b.example.com");
  EXPECT_EQ(o, "");
  ASSERT_TRUE(SplitAbsoluteTarget("http://b?q", &a, &o));
  EXPECT_EQ(o, "?q");
  EXPECT_FALSE(SplitAbsoluteTarget("/x", &a, &o));
  EXPECT_FALSE(SplitAbsoluteTarget("ftp://b/", &a, &o));
  EXPECT_FALSE(SplitAbsoluteTarget("b.example.com:443", &a, &o));
}

struct Case {
  const char* name;
  std::string raw;
  int status;
  std::string head;  // when status is 0
};

// What the app receives for each request (before X-Forwarded-* and X-Request-Id), or the
// status the gateway answers itself.
TEST(RequestRulesTest, WhatReachesTheApp) {
  const Case cases[] = {
      {"plain", "GET /a HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\r\n", 0,
       "GET /a HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\r\n"},
      {"te gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400, ""},
      {"te chunked, gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
       400, ""},
      {"te gzip, chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
       501, ""},
      {"te gzip + cl", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nContent-Length: 5\r\n\r\n",
       400, ""},
      {"te + cl", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
       400, ""},
      {"cl + te", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
       400, ""},
      {"te chunked twice", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
       400, ""},
      {"te on 1.0", "POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", 400, ""},
      {"te normalised", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , Chunked\r\n\r\n", 0,
       "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"},
      {"cl list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", 0,
       "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n"},
      {"cl repeat", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 0,
       "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n"},
      {"two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, ""},
      {"no host", "GET / HTTP/1.1\r\n\r\n", 400, ""},
      {"no host on 1.0", "GET / HTTP/1.0\r\n\r\n", 0, "GET / HTTP/1.1\r\n\r\n"},
      {"bad host", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400, ""},
      {"absolute form", "GET http://b.example.com:81/x?y HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\r\n", 0,
       "GET /x?y HTTP/1.1\r\nX-A: 1\r\nHost: b.example.com:81\r\n\r\n"},
      {"absolute, no path", "GET http://b HTTP/1.1\r\nHost: b\r\n\r\n", 0,
       "GET / HTTP/1.1\r\nHost: b\r\n\r\n"},
      {"absolute, no host", "GET http://b/ HTTP/1.1\r\n\r\n", 400, ""},
      {"absolute userinfo", "GET http://u@b/ HTTP/1.1\r\nHost: b\r\n\r\n", 400, ""},
      {"connect", "CONNECT b:443 HTTP/1.1\r\nHost: b:443\r\n\r\n", 400, ""},
      {"options *", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 0, "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"},
      {"connection cannot strip framing",
       "POST / HTTP/1.1\r\nHost: a\r\nConnection: Content-Length, Host, X-S\r\nX-S: 1\r\n"
       "Content-Length: 5\r\n\r\n",
       0, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n"},
      {"hop-by-hop",
       "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nKeep-Alive: 5\r\nProxy-Connection: x\r\n"
       "TE: trailers\r\nTrailer: X\r\nUpgrade: h2c\r\nExpect: 100-continue\r\n\r\n",
       0, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"},
      {"websocket", "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", 0,
       "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"},
      {"incomplete", "GET / HTTP/1.1\r\nHost: a\r\n", -1, ""},
  };
  for (const Case& c : cases) {
    std::string head;
    EXPECT_EQ(ProxiedRequestForTest(c.raw, &head), c.status) << c.name;
    if (c.status == 0) {
      EXPECT_EQ(head, c.head) << c.name;
    }
  }
}

}  // namespace
}  // namespace berth::gateway
