// Router matching, and the API service driven in-process (no sockets) over a real SQLite
// store: the rules that must hold whatever transport delivers the request.
#include <filesystem>

#include <gtest/gtest.h>

#include "api/api_server.h"
#include "api/router.h"
#include "auth/crypto.h"
#include "model/json_util.h"

namespace berth::api {
namespace {

TEST(RouterTest, MatchesParamsAndReportsMethodAndRouteErrors) {
  Router r;
  Route get;
  get.method = "GET";
  get.pattern = "/api/v1/teams/{team}/apps/{app}";
  r.Add(get);
  Route del = get;
  del.method = "DELETE";
  r.Add(del);
  std::map<std::string, std::string> p;
  auto m = r.Match("GET", "/api/v1/teams/t1/apps/shop", &p);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(p["team"], "t1");
  EXPECT_EQ(p["app"], "shop");
  EXPECT_TRUE(r.Match("HEAD", "/api/v1/teams/t1/apps/shop", &p).ok());
  auto bad_method = r.Match("POST", "/api/v1/teams/t1/apps/shop", &p);
  EXPECT_EQ(bad_method.status().reason(), "method_not_allowed");
  EXPECT_NE(bad_method.status().message().find("GET, DELETE"), std::string::npos);
  EXPECT_EQ(r.Match("GET", "/api/v1/teams/t1/apps", &p).status().reason(), "route_not_found");
  EXPECT_EQ(r.Match("GET", "/api/v1/teams/t1/apps/shop/x", &p).status().reason(), "route_not_found");
}

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("berth-api-" + auth::RandomHex(6));
    std::filesystem::create_directories(dir_);
    store_ = std::move(OpenSqliteStore((dir_ / "db").string(), {false, 1000})).value();
    api_ = std::make_unique<ApiService>(*store_, clock_, ApiOptions{});
    api_->SetReady(true);
    // An administrator, a team "t" owned by them, and users with each role.
    WriteBatch b;
    auto put = [&](const char* kind, const std::string& scope, const std::string& name,
                   const Json& body) {
      b.ops.push_back(Op{OpType::kCreate, Object{kind, scope, name, body.dump()}});
    };
    std::string hash = auth::HashPassword("password1").value();
    for (const char* u : {"root", "olga", "adam", "dave", "vera", "nora"}) {
      put("user", "", u, {{"name", u}, {"admin", std::string(u) == "root"}, {"password_hash", hash}});
    }
    put("team", "", "t", {{"name", "t"}});
    put("member", "t", "olga", {{"user", "olga"}, {"role", "owner"}});
    put("member", "t", "adam", {{"user", "adam"}, {"role", "admin"}});
    put("member", "t", "dave", {{"user", "dave"}, {"role", "developer"}});
    put("member", "t", "vera", {{"user", "vera"}, {"role", "viewer"}});
    ASSERT_TRUE(store_->Commit(b).ok());
  }
  void TearDown() override {
    api_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::string Login(const std::string& user) {
    auto r = Call("POST", "/api/v1/login", "", Json{{"user", user}, {"password", "password1"}}.dump());
    EXPECT_EQ(r.status, 200) << r.body;
    return Json::parse(r.body).value("token", "");
  }

  HttpResponse Call(const std::string& method, const std::string& target, const std::string& token,
                    const std::string& body = "") {
    HttpRequest req;
    req.method = method;
    req.target = target;
    size_t q = target.find('?');
    req.path = target.substr(0, q);
    if (q != std::string::npos) req.query = ParseQuery(target.substr(q + 1));
    if (!token.empty()) req.headers["authorization"] = "Bearer " + token;
    if (!body.empty()) req.headers["content-type"] = "application/json";
    req.body = body;
    req.remote_addr = "127.0.0.1";
    return api_->Handle(req);
  }

  static std::string Code(const HttpResponse& r) {
    Json j = Json::parse(r.body, nullptr, false);
    return j.is_object() ? j.value("code", "") : "";
  }

  FakeClockForTest clock_{FromUnixMillis(1795000000000)};
  std::filesystem::path dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<ApiService> api_;
};

TEST_F(ApiTest, HealthIsPublicAndEverythingElseNeedsAToken) {
  EXPECT_EQ(Call("GET", "/healthz", "").status, 200);
  EXPECT_EQ(Call("GET", "/readyz", "").status, 200);
  api_->SetReady(false);
  EXPECT_EQ(Call("GET", "/readyz", "").status, 503);
  api_->SetReady(true);
  auto r = Call("GET", "/api/v1/teams", "");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(Code(r), "unauthenticated");
  EXPECT_EQ(Call("GET", "/api/v1/teams/t/apps", "bth_nope").status, 401);
  EXPECT_EQ(Code(Call("GET", "/api/v1/nothing", "")), "route_not_found");
}

TEST_F(ApiTest, RevisionConflictLeavesTheObjectUnchanged) {
  std::string tok = Login("dave");
  auto c = Call("POST", "/api/v1/teams/t/apps", tok, R"({"name":"shop"})");
  ASSERT_EQ(c.status, 201) << c.body;
  int64_t rev = Json::parse(c.body)["revision"];
  auto ok = Call("PATCH", "/api/v1/teams/t/apps/shop", tok,
                 Json{{"description", "one"}, {"revision", rev}}.dump());
  ASSERT_EQ(ok.status, 200) << ok.body;
  auto stale = Call("PATCH", "/api/v1/teams/t/apps/shop", tok,
                    Json{{"description", "two"}, {"revision", rev}}.dump());
  EXPECT_EQ(stale.status, 409);
  EXPECT_EQ(Code(stale), "revision_conflict");
  auto now = Json::parse(Call("GET", "/api/v1/teams/t/apps/shop", tok).body);
  EXPECT_EQ(now["description"], "one");
  auto del = Call("DELETE", "/api/v1/teams/t/apps/shop?revision=" + std::to_string(rev), tok);
  EXPECT_EQ(Code(del), "revision_conflict");
  EXPECT_EQ(Call("GET", "/api/v1/teams/t/apps/shop", tok).status, 200);
}

TEST_F(ApiTest, RolesDecideWhoMayWrite) {
  std::string viewer = Login("vera"), dev = Login("dave"), admin = Login("adam"),
              outsider = Login("nora");
  EXPECT_EQ(Call("GET", "/api/v1/teams/t/apps", viewer).status, 200);
  auto w = Call("POST", "/api/v1/teams/t/apps", viewer, R"({"name":"x"})");
  EXPECT_EQ(w.status, 403);
  EXPECT_EQ(Code(w), "permission_denied");
  EXPECT_EQ(Call("GET", "/api/v1/teams/t/apps", outsider).status, 404);
  EXPECT_EQ(Call("POST", "/api/v1/teams/t/members", dev, R"({"user":"nora","role":"viewer"})").status, 403);
  EXPECT_EQ(Call("GET", "/api/v1/teams/t/audit", dev).status, 403);
  EXPECT_EQ(Call("POST", "/api/v1/teams/t/members", admin, R"({"user":"nora","role":"owner"})").status, 403);
  EXPECT_EQ(Call("POST", "/api/v1/teams/t/members", admin, R"({"user":"nora","role":"viewer"})").status, 201);
  EXPECT_EQ(Call("GET", "/api/v1/teams/t/audit", admin).status, 200);
  // Outsiders do not see the team in their list.
  auto teams = Json::parse(Call("GET", "/api/v1/teams", Login("root")).body);
  EXPECT_EQ(teams["items"].size(), 1u);
}

TEST_F(ApiTest, ATeamKeepsItsLastOwner) {
  std::string owner = Login("olga");
  auto r = Call("DELETE", "/api/v1/teams/t/members/olga", owner);
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(Code(r), "failed_precondition");
  auto demote = Call("PATCH", "/api/v1/teams/t/members/olga", owner, R"({"role":"viewer"})");
  EXPECT_EQ(Code(demote), "failed_precondition");
  EXPECT_EQ(Call("PATCH", "/api/v1/teams/t/members/adam", owner, R"({"role":"owner"})").status, 200);
  EXPECT_EQ(Call("DELETE", "/api/v1/teams/t/members/olga", owner).status, 200);
}

TEST_F(ApiTest, BadInputChangesNothing) {
  std::string tok = Login("dave");
  int64_t head = store_->Head();
  EXPECT_EQ(Code(Call("POST", "/api/v1/teams/t/apps", tok, "{not json")), "invalid_json");
  EXPECT_EQ(Code(Call("POST", "/api/v1/teams/t/apps", tok, "[1,2]")), "invalid_json");
  auto unknown = Call("POST", "/api/v1/teams/t/apps", tok, R"({"name":"a","colour":"red"})");
  EXPECT_EQ(Code(unknown), "unknown_field");
  EXPECT_EQ(Json::parse(unknown.body)["field"], "colour");
  EXPECT_EQ(Code(Call("POST", "/api/v1/teams/t/apps", tok, R"({"name":"Bad_Name"})")), "invalid_name");
  EXPECT_EQ(Call("POST", "/api/v1/teams/t/apps/none/components", tok, R"({"name":"web"})").status, 404);
  EXPECT_EQ(store_->Head(), head);
}

TEST_F(ApiTest, MergePatchRemovesEnvKeysAndPutReplaces) {
  std::string tok = Login("dave");
  ASSERT_EQ(Call("POST", "/api/v1/teams/t/apps", tok, R"({"name":"shop"})").status, 201);
  ASSERT_EQ(Call("POST", "/api/v1/teams/t/apps/shop/components", tok,
                 R"({"name":"web","env":{"A":"1","B":"2"},"replicas":3})").status, 201);
  auto p = Call("PATCH", "/api/v1/teams/t/apps/shop/components/web", tok, R"({"env":{"A":null,"C":"3"}})");
  ASSERT_EQ(p.status, 200) << p.body;
  Json c = Json::parse(p.body);
  EXPECT_EQ(c["env"], (Json{{"B", "2"}, {"C", "3"}}));
  EXPECT_EQ(c["replicas"], 3);
  auto put = Call("PUT", "/api/v1/teams/t/apps/shop/components/web", tok, R"({"name":"web"})");
  ASSERT_EQ(put.status, 200) << put.body;
  EXPECT_EQ(Json::parse(put.body)["replicas"], 1);
  EXPECT_EQ(Code(Call("PUT", "/api/v1/teams/t/apps/shop/components/web", tok, R"({"name":"other"})")),
            "invalid_argument");
}

TEST_F(ApiTest, DependenciesCheckTargetsAndBlockDeletes) {
  std::string tok = Login("dave");
  ASSERT_EQ(Call("POST", "/api/v1/teams/t/apps", tok, R"({"name":"shop"})").status, 201);
  ASSERT_EQ(Call("POST", "/api/v1/teams/t/apps", tok, R"({"name":"infra"})").status, 201);
  ASSERT_EQ(Call("POST", "/api/v1/teams/t/apps/shop/components", tok, R"({"name":"web"})").status, 201);
  ASSERT_EQ(Call("POST", "/api/v1/teams/t/apps/infra/components", tok, R"({"name":"db"})").status, 201);
  const std::string deps = "/api/v1/teams/t/apps/shop/components/web/dependencies";
  EXPECT_EQ(Call("POST", deps, tok, R"({"target_component":"web"})").status, 400);
  EXPECT_EQ(Call("POST", deps, tok, R"({"target_component":"nope"})").status, 400);
  auto d = Call("POST", deps, tok, R"({"target_component":"db","target_app":"infra"})");
  ASSERT_EQ(d.status, 201) << d.body;
  EXPECT_EQ(Json::parse(d.body)["name"], "infra-db");
  EXPECT_EQ(Code(Call("DELETE", "/api/v1/teams/t/apps/infra", tok)), "failed_precondition");
  EXPECT_EQ(Code(Call("DELETE", "/api/v1/teams/t/apps/infra/components/db", tok)), "failed_precondition");
  EXPECT_EQ(Call("DELETE", deps + "/infra-db", tok).status, 200);
  EXPECT_EQ(Call("DELETE", "/api/v1/teams/t/apps/infra", tok).status, 200);
  EXPECT_EQ(Call("GET", "/api/v1/teams/t/apps/infra/components/db", tok).status, 404);
}

TEST_F(ApiTest, OpenApiDescribesEveryRoute) {
  auto r = Call("GET", "/api/v1/openapi.json", "");
  ASSERT_EQ(r.status, 200);
  Json doc = Json::parse(r.body);
  EXPECT_EQ(doc["openapi"], "3.0.3");
  for (const char* path : {"/api/v1/login", "/api/v1/teams/{team}/apps/{app}/components/{component}",
                           "/api/v1/teams/{team}/watch", "/api/v1/teams/{team}/audit"}) {
    EXPECT_TRUE(doc["paths"].contains(path)) << path;
  }
  EXPECT_TRUE(doc["paths"]["/api/v1/teams/{team}/apps"].contains("post"));
  EXPECT_TRUE(doc["components"]["schemas"].contains("Component"));
}

}  // namespace
}  // namespace berth::api
