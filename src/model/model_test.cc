#include "model/model.h"

#include <gtest/gtest.h>

namespace berth::model {
namespace {

Json J(const char* s) { return Json::parse(s); }

TEST(ModelTest, ComponentDefaultsAndRoundTrip) {
  auto c = ParseComponent(J(R"({"name":"web"})"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->kind, "service");
  EXPECT_EQ(c->replicas, 1);
  EXPECT_EQ(c->desired_state, "running");
  Json out = ToJson(*c);
  auto again = ParseComponent(out);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(ToJson(*again), out);
}

TEST(ModelTest, ComponentFullRoundTrip) {
  const char* body = R"({"name":"api","kind":"cronjob","schedule":"*/5 * * * 1-5",
    "source":{"type":"git","url":"https://example.invalid/x.git","ref":"v1"},
    "build":{"start_command":"node server.js","subdir":"srv"},
    "ports":[{"port":8080,"protocol":"http","outer":true},{"port":5432,"protocol":"tcp"}],
    "env":{"A":"1","DATABASE_URL":"x"},
    "config_files":[{"path":"conf/app.ini","content":"k=${A}"}],
    "volumes":[{"name":"data","path":"data","shared":true}],
    "health":{"readiness":{"type":"http","port":8080,"path":"/healthz","expect_status":200}},
    "resources":{"memory_mb":256,"cpu_millis":500},"replicas":3,
    "revision":7,"created_at":"x","team":"t","app":"a"})";
  auto c = ParseComponent(J(body));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->ports.size(), 2u);
  EXPECT_TRUE(c->ports[0].outer);
  EXPECT_TRUE(c->ports[1].inner);
  EXPECT_EQ(c->env.at("DATABASE_URL"), "x");
  ASSERT_TRUE(c->health.readiness.has_value());
  EXPECT_EQ(c->health.readiness->path, "/healthz");
  EXPECT_FALSE(c->health.liveness.has_value());
  EXPECT_EQ(ToJson(*c)["health"]["liveness"], nullptr);
}

struct BadCase {
  const char* body;
  const char* reason;
  const char* field;
};

TEST(ModelTest, ComponentRejectsBadInputNamingTheField) {
  const BadCase cases[] = {
      {R"({"name":"Web"})", "invalid_name", "name"},
      {R"({"name":"web","colour":"red"})", "unknown_field", "colour"},
      {R"({"name":"web","replicas":"2"})", "invalid_argument", "replicas"},
      {R"({"name":"web","replicas":101})", "invalid_argument", "replicas"},
      {R"({"name":"web","ports":[{"port":0}]})", "invalid_argument", "ports[0].port"},
      {R"({"name":"web","ports":[{"port":70000}]})", "invalid_argument", "ports[0].port"},
      {R"({"name":"web","ports":[{"port":80,"protocol":"smtp"}]})", "invalid_argument",
       "ports[0].protocol"},
      {R"({"name":"web","ports":[{"port":80},{"port":80}]})", "invalid_argument", "ports[1].port"},
      {R"({"name":"web","ports":[{"port":80,"x":1}]})", "unknown_field", "ports[0].x"},
      {R"({"name":"web","env":{"1A":"x"}})", "invalid_argument", "env.1A"},
      {R"({"name":"web","env":{"A":1}})", "invalid_argument", "env.A"},
      {R"({"name":"web","config_files":[{"path":"../etc/passwd","content":""}]})",
       "invalid_argument", "config_files[0].path"},
      {R"({"name":"web","config_files":[{"path":"/etc/passwd","content":""}]})",
       "invalid_argument", "config_files[0].path"},
      {R"({"name":"web","kind":"cronjob"})", "invalid_argument", "schedule"},
      {R"({"name":"web","kind":"cronjob","schedule":"61 * * * *"})", "invalid_argument",
       "schedule"},
      {R"({"name":"web","schedule":"* * * * *"})", "invalid_argument", "schedule"},
      {R"({"name":"web","source":{"type":"dir","path":"rel"}})", "invalid_argument",
       "source.path"},
      {R"({"name":"web","source":{"type":"git"}})", "invalid_argument", "source.url"},
      {R"({"name":"web","health":{"liveness":{"type":"command"}}})", "invalid_argument",
       "health.liveness.command"},
      {R"({"name":"web","health":{"liveness":{"type":"http","path":"x"}}})", "invalid_argument",
       "health.liveness.path"},
      {R"({"name":"web","volumes":[{"name":"d","path":"a/../../b"}]})", "invalid_argument",
       "volumes[0].path"},
      {R"({"name":"web","resources":{"memory_mb":-1}})", "invalid_argument",
       "resources.memory_mb"},
  };
  for (const BadCase& bc : cases) {
    auto c = ParseComponent(J(bc.body));
    ASSERT_FALSE(c.ok()) << bc.body;
    EXPECT_EQ(c.status().reason(), bc.reason) << bc.body << " " << c.status().ToString();
    EXPECT_EQ(c.status().field(), bc.field) << bc.body << " " << c.status().ToString();
  }
}

TEST(ModelTest, CronExpressions) {
  for (const char* ok : {"* * * * *", "0 3 * * *", "*/15 0-6 1,15 * 1-5", "5 4 * * 7"}) {
    EXPECT_TRUE(ValidateCron(ok, "schedule").ok()) << ok;
  }
  for (const char* bad : {"", "* * * *", "60 * * * *", "* 24 * * *", "*/0 * * * *", "a * * * *",
                          "5-1 * * * *", "* * * * * *"}) {
    EXPECT_FALSE(ValidateCron(bad, "schedule").ok()) << bad;
  }
}

TEST(ModelTest, JsonBodyMustBeAnObject) {
  EXPECT_EQ(ParseJsonObject("{").status().reason(), "invalid_json");
  EXPECT_EQ(ParseJsonObject("[1]").status().reason(), "invalid_json");
  EXPECT_TRUE(ParseJsonObject("{}").ok());
}

TEST(ModelTest, UsersMembersTeamsApps) {
  EXPECT_TRUE(ParseUser(J(R"({"name":"bob","password":"longenough"})")).ok());
  EXPECT_EQ(ParseUser(J(R"({"name":"bob","password":"short"})")).status().field(), "password");
  EXPECT_EQ(ParseUser(J(R"({"name":"bob","email":"nope"})")).status().field(), "email");
  // Service accounts: stored and shown, default false, strictly a boolean.
  auto svc = ParseUser(J(R"({"name":"berth-gateway","admin":true,"service":true})"));
  ASSERT_TRUE(svc.ok());
  EXPECT_TRUE(svc->user.service);
  EXPECT_EQ(ToJson(svc->user, false)["service"], true);
  EXPECT_FALSE(ParseUser(J(R"({"name":"bob"})"))->user.service);
  EXPECT_EQ(ParseUser(J(R"({"name":"bob","service":"yes"})")).status().field(), "service");
  auto m = ParseMember(J(R"({"user":"bob","role":"developer"})"));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->role, Role::kDeveloper);
  EXPECT_EQ(ParseMember(J(R"({"user":"bob","role":"god"})")).status().field(), "role");
  EXPECT_EQ(ParseTeam(J(R"({"name":"t","quota":{"instances":-1}})")).status().field(),
            "quota.instances");
  EXPECT_EQ(ParseApp(J(R"({"name":"shop","description":1})")).status().field(), "description");
  User u{"bob", "", "", false, false, "secret-hash"};
  EXPECT_FALSE(ToJson(u, false).contains("password_hash"));
}

TEST(ModelTest, DependencyNameFollowsTarget) {
  auto same = ParseDependencyInput(J(R"({"target_component":"db"})"), "shop");
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->name, "db");
  EXPECT_EQ(same->target_app, "shop");
  auto other = ParseDependencyInput(J(R"({"target_component":"db","target_app":"infra"})"), "shop");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->name, "infra-db");
  EXPECT_FALSE(ParseDependencyInput(J(R"({"target_component":"DB"})"), "shop").ok());
}

}  // namespace
}  // namespace berth::model

namespace berth::model {
namespace {

TEST(ModelTest, BuiltVersionsParseWithTheirBuildRequest) {
  // What the build controller stores: the runtime must be able to read it back.
  auto v = ParseVersion(Json::parse(R"({"status":"ready","artifact":"sha256:ab",
    "start_command":"python3 app.py","detect":{"language":"python"},
    "build_request":{"source":{"type":"dir","path":"/src"},"requested_by":"admin"}})"));
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->build_request["requested_by"], "admin");
  EXPECT_EQ(ToJson(*v)["build_request"]["source"]["path"], "/src");
  EXPECT_EQ(ParseVersion(Json::parse(R"({"build_request":[]})")).status().field(), "build_request");
}

TEST(ComponentRollout, CountsPercentagesAndGrace) {
  auto c = ParseComponent({{"name", "web"},
                           {"rollout", {{"max_surge", "25%"}, {"max_unavailable", 1}}},
                           {"grace_period_s", 30}});
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_TRUE(c->rollout.max_surge.percent);
  EXPECT_EQ(c->rollout.max_surge.value, 25);
  EXPECT_EQ(c->rollout.max_surge.Resolve(10, true), 3);
  EXPECT_EQ(c->rollout.max_unavailable.Resolve(10, false), 1);
  EXPECT_EQ(c->grace_period_s, 30);
  Json back = ToJson(*c);
  EXPECT_EQ(back["rollout"]["max_surge"], "25%");
  EXPECT_EQ(back["rollout"]["max_unavailable"], 1);
  EXPECT_EQ(back["grace_period_s"], 30);
  auto again = ParseComponent(back);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(ToJson(*again), back);

  auto d = ParseComponent({{"name", "web"}});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(ToJson(*d)["rollout"], Json({{"max_surge", 1}, {"max_unavailable", 0}}));
  EXPECT_EQ(d->grace_period_s, 10);

  Amount pct{50, true};
  EXPECT_EQ(pct.Resolve(3, true), 2);
  EXPECT_EQ(pct.Resolve(3, false), 1);
}

TEST(ComponentRollout, BadValuesNameTheField) {
  struct Case {
    Json rollout;
    std::string field;
  };
  for (const Case& k : std::vector<Case>{{{{"max_surge", "120%"}}, "rollout.max_surge"},
                                         {{{"max_surge", -1}}, "rollout.max_surge"},
                                         {{{"max_unavailable", "x%"}}, "rollout.max_unavailable"},
                                         {{{"max_unavailable", 1.5}}, "rollout.max_unavailable"},
                                         {{{"max_surge", 0}, {"max_unavailable", "0%"}}, "rollout.max_surge"},
                                         {{{"surge", 1}}, "rollout.surge"}}) {
    auto c = ParseComponent({{"name", "web"}, {"rollout", k.rollout}});
    ASSERT_FALSE(c.ok()) << k.rollout.dump();
    EXPECT_EQ(c.status().field(), k.field) << k.rollout.dump() << ": " << c.status().message();
  }
  auto g = ParseComponent({{"name", "web"}, {"grace_period_s", 4000}});
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().field(), "grace_period_s");
}

}  // namespace
}  // namespace berth::model
