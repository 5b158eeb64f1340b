#include "gateway/match.h"

#include <gtest/gtest.h>

namespace berth::gateway {
namespace {

HttpRoute R(std::string id, std::vector<std::string> domains, std::string prefix = "/",
            std::vector<Match> headers = {}, std::vector<Match> cookies = {}) {
  HttpRoute r;
  r.id = std::move(id);
  r.domains = std::move(domains);
  r.path_prefix = std::move(prefix);
  r.headers = std::move(headers);
  r.cookies = std::move(cookies);
  return r;
}

struct Case {
  std::string host;
  const char* target;
  std::vector<std::pair<std::string, std::string>> headers;
  const char* want;  // route id, "" = no match
};

TEST(Match, Table) {
  const std::vector<HttpRoute> routes = {
      R("shop-root", {"shop.example.com"}),
      R("shop-api", {"shop.example.com"}, "/api"),
      R("shop-api-canary", {"shop.example.com"}, "/api", {{"X-Canary", "1"}}),
      R("shop-api-beta", {"shop.example.com"}, "/api", {}, {{"beta", "yes"}}),
      R("shop-api-v2", {"shop.example.com"}, "/api/v2/"),
      R("wild", {"*.example.com"}),
      R("wild-deep", {"*.b.example.com"}),
      R("wild-docs", {"*.example.com"}, "/docs"),
      R("local", {"web.shop.localhost"}),
  };
  const RouteTable table(routes);
  const std::vector<Case> cases = {
      {"shop.example.com", "/", {}, "shop-root"},
      {"SHOP.Example.COM:8080", "/index.html", {}, "shop-root"},
      {"shop.example.com.", "/", {}, "shop-root"},
      {"shop.example.com", "/api", {}, "shop-api"},
      {"shop.example.com", "/api/", {}, "shop-api"},
      {"shop.example.com", "/api/users?x=1", {}, "shop-api"},
      {"shop.example.com", "/apix", {}, "shop-root"},           // not a segment boundary
      {"shop.example.com", "/api?q=/api/v2/", {}, "shop-api"},  // the query is not the path
      {"shop.example.com", "/api/v2/items", {}, "shop-api-v2"},
      {"shop.example.com", "/api/v2", {}, "shop-api"},  // "/api/v2/" needs the slash
      {"shop.example.com", "/api/x", {{"x-canary", "1"}}, "shop-api-canary"},
      {"shop.example.com", "/api/x", {{"X-Canary", "2"}}, "shop-api"},
      {"shop.example.com", "/api/x", {{"Cookie", "a=1; beta=yes"}}, "shop-api-beta"},
      {"shop.example.com", "/api/x", {{"Cookie", "beta=no"}}, "shop-api"},
      {"shop.example.com", "/api/x", {{"Cookie", "xbeta=yes"}}, "shop-api"},
      {"shop.example.com", "http://shop.example.com/api/x", {}, "shop-api"},
      {"a.example.com", "/", {}, "wild"},
      {"a.example.com", "/docs/x", {}, "wild-docs"},
      {"a.b.example.com", "/", {}, "wild-deep"},      // most specific suffix first
      {"a.b.example.com", "/docs", {}, "wild-deep"},  // the first tier with a match wins
      {"x.a.example.com", "/", {}, "wild"},
      {"example.com", "/", {}, ""},        // wildcard needs a label
      {"b.example.com", "/", {}, "wild"},  // *.b.example.com is not b.example.com
      {"web.shop.localhost:8080", "/", {}, "local"},
      {"other.localhost", "/", {}, ""},
      {"", "/", {}, ""},
      {"[::1]:80", "/", {}, ""},
      {std::string(300, 'a'), "/", {}, ""},
  };
  for (const auto& c : cases) {
    VectorHeaders h(c.headers);
    int i = table.Match(c.host, c.target, h);
    std::string got = i < 0 ? "" : routes[i].id;
    EXPECT_EQ(got, c.want) << c.host << " " << c.target;
  }
}

TEST(Match, EmptyTableMatchesNothing) {
  RouteTable t;
  VectorHeaders h;
  EXPECT_EQ(t.Match("a.com", "/", h), -1);
  std::vector<HttpRoute> none;
  RouteTable t2(none);
  EXPECT_EQ(t2.Match("a.com", "/", h), -1);
}

TEST(Match, EqualPrefixPrefersMoreMatchesThenOrder) {
  const std::vector<HttpRoute> routes = {
      R("first", {"a.com"}, "/x"),
      R("second", {"a.com"}, "/x"),
      R("two", {"a.com"}, "/x", {{"A", "1"}, {"B", "2"}}),
      R("one", {"a.com"}, "/x", {{"A", "1"}}),
  };
  RouteTable t(routes);
  using Pairs = std::vector<std::pair<std::string, std::string>>;
  VectorHeaders ab(Pairs{{"A", "1"}, {"B", "2"}});
  VectorHeaders a(Pairs{{"A", "1"}});
  VectorHeaders none;
  EXPECT_EQ(routes[t.Match("a.com", "/x", ab)].id, "two");
  EXPECT_EQ(routes[t.Match("a.com", "/x", a)].id, "one");
  EXPECT_EQ(routes[t.Match("a.com", "/x", none)].id, "first");
}

TEST(Match, Helpers) {
  EXPECT_TRUE(PathPrefixMatches("/", "/anything"));
  EXPECT_TRUE(PathPrefixMatches("/a/", "/a/b"));
  EXPECT_FALSE(PathPrefixMatches("/a/", "/a"));
  EXPECT_FALSE(PathPrefixMatches("/a", "/"));
  EXPECT_EQ(TargetPath("/a/b?c#d"), "/a/b");
  EXPECT_EQ(TargetPath("?x"), "/");
  EXPECT_EQ(TargetPath("*"), "/");
  std::string_view v;
  EXPECT_TRUE(FindCookie("a=1;b = \"two\" ; c=3", "b", &v));
  EXPECT_EQ(v, "two");
  EXPECT_FALSE(FindCookie("a=1; bb=2", "b", &v));
  EXPECT_FALSE(FindCookie("", "b", &v));
  char buf[256];
  EXPECT_EQ(NormalizeHost(" Web.Shop.LOCALHOST:80 ", buf), "web.shop.localhost");
  EXPECT_EQ(NormalizeHost("[::1]:80", buf), "[::1]");
  EXPECT_EQ(NormalizeHost("[::1", buf), "");
}

}  // namespace
}  // namespace berth::gateway
