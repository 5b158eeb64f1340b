#include "model/model.h"

#include <gtest/gtest.h>
#include <time.h>

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
    "ports":[{"port":8080,"protocol":"http","outer":true,"auto":true},{"port":5432,"protocol":"tcp"}],
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
  // The builder's marker survives a write that goes through the model (env, scale, ...).
  EXPECT_TRUE(c->ports[0].automatic);
  EXPECT_FALSE(c->ports[1].automatic);
  EXPECT_EQ(ToJson(*c)["ports"][0]["auto"], true);
  EXPECT_FALSE(ToJson(*c)["ports"][1].contains("auto"));
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
       "unsafe_path", "config_files[0].path"},
      {R"({"name":"web","config_files":[{"path":"/etc/passwd","content":""}]})",
       "unsafe_path", "config_files[0].path"},
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
      {R"({"name":"web","volumes":[{"name":"d","path":"a/../../b"}]})", "unsafe_path",
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

// Unix seconds of a UTC time, and back, for readable cron cases.
int64_t At(int y, int mo, int d, int h, int mi) {
  struct tm tm {};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  return static_cast<int64_t>(timegm(&tm));
}
std::string Fmt(std::optional<int64_t> t) {
  if (!t) return "never";
  time_t tt = static_cast<time_t>(*t);
  struct tm tm {};
  gmtime_r(&tt, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%d %H:%M %a", &tm);
  return buf;
}
std::string Next(const char* expr, int64_t after) {
  auto c = ParseCron(expr, "schedule");
  if (!c.ok()) return "invalid: " + c.status().message();
  return Fmt(c->NextAfter(after));
}

TEST(CronTest, NextFiring) {
  const int64_t t = At(2026, 1, 30, 10, 7);  // a Friday
  struct Case {
    const char* expr;
    int64_t after;
    const char* want;
  } cases[] = {
      {"* * * * *", t, "2026-01-30 10:08 Fri"},
      {"* * * * *", t + 30, "2026-01-30 10:08 Fri"},           // strictly after, whole minutes
      {"*/15 * * * *", t, "2026-01-30 10:15 Fri"},             // steps
      {"*/15 * * * *", At(2026, 1, 30, 10, 45), "2026-01-30 11:00 Fri"},
      {"5/20 * * * *", t, "2026-01-30 10:25 Fri"},             // N/step = N-59/step
      {"10-20/5 * * * *", At(2026, 1, 30, 10, 15), "2026-01-30 10:20 Fri"},
      {"0 3,15 * * *", t, "2026-01-30 15:00 Fri"},             // lists
      {"0 3,15 * * *", At(2026, 1, 30, 15, 0), "2026-01-31 03:00 Sat"},
      {"30 23 31 * *", t, "2026-01-31 23:30 Sat"},             // month end
      {"0 0 31 * *", At(2026, 2, 1, 0, 0), "2026-03-31 00:00 Tue"},  // skips February
      {"0 0 1 * *", At(2026, 12, 31, 23, 59), "2027-01-01 00:00 Fri"},  // year end
      {"0 12 29 2 *", t, "2028-02-29 12:00 Tue"},              // leap day
      {"0 0 30 2 *", t, "never"},
      {"0 9 * * 1-5", t, "2026-02-02 09:00 Mon"},              // weekdays skip the weekend
      {"0 9 * * 0", t, "2026-02-01 09:00 Sun"},                // Sunday as 0
      {"0 9 * * 7", t, "2026-02-01 09:00 Sun"},                // and as 7
      {"0 9 * * 5-7", At(2026, 1, 31, 10, 0), "2026-02-01 09:00 Sun"},
      // Both day fields restricted: either matches (the 13th, or any Monday).
      {"0 0 13 * 1", t, "2026-02-02 00:00 Mon"},
      {"0 0 13 * 1", At(2026, 2, 10, 0, 0), "2026-02-13 00:00 Fri"},
      // A "*"-led day-of-week ("*/2") is not a restriction in cron's sense: both must match.
      {"0 0 2 * */2", t, "2026-04-02 00:00 Thu"},
      {"0 0 * 6 *", t, "2026-06-01 00:00 Mon"},                // month
  };
  for (const Case& c : cases) EXPECT_EQ(Next(c.expr, c.after), c.want) << c.expr;
}

TEST(ModelTest, JobSettings) {
  auto c = ParseComponent(J(R"({"name":"nightly","kind":"cronjob","schedule":"0 3 * * *",
      "job":{"retries":2,"timeout_s":60,"history_limit":3,"concurrency_policy":"forbid",
             "suspend":true}})"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->job.retries, 2);
  EXPECT_EQ(c->job.concurrency_policy, "forbid");
  EXPECT_TRUE(c->job.suspend);
  Json out = ToJson(*c);
  EXPECT_EQ(out["job"]["history_limit"], 3);
  EXPECT_EQ(ToJson(*ParseComponent(out)), out);
  auto job = ParseComponent(J(R"({"name":"once","kind":"job"})"));
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(ToJson(*job)["job"]["retries"], 3);  // defaults shown
  EXPECT_FALSE(ToJson(*ParseComponent(J(R"({"name":"web"})"))).contains("job"));
  EXPECT_TRUE(ParseComponent(J(R"({"name":"web","job":null})")).ok());
  struct Bad {
    const char* body;
    const char* field;
  } bad[] = {
      {R"({"name":"web","job":{"retries":1}})", "job"},
      {R"({"name":"j","kind":"job","job":{"retries":-1}})", "job.retries"},
      {R"({"name":"j","kind":"job","job":{"history_limit":0}})", "job.history_limit"},
      {R"({"name":"j","kind":"job","job":{"concurrency_policy":"sometimes"}})",
       "job.concurrency_policy"},
      {R"({"name":"j","kind":"job","job":{"suspend":true}})", "job.suspend"},
      {R"({"name":"j","kind":"job","job":{"retry":1}})", "job.retry"},
  };
  for (const Bad& b : bad) {
    auto r = ParseComponent(J(b.body));
    ASSERT_FALSE(r.ok()) << b.body;
    EXPECT_EQ(r.status().field(), b.field) << b.body << " " << r.status().ToString();
  }
}

TEST(ModelTest, Runs) {
  model::Run r;
  r.name = "run-12";
  r.number = 12;
  r.trigger = "schedule";
  r.last_exit = {{"code", 3}};
  auto back = RunFromJson(ToJson(r));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(ToJson(*back), ToJson(r));
  EXPECT_EQ(RunNumber("run-12"), 12);
  EXPECT_EQ(RunNumber("run-"), 0);
  EXPECT_EQ(RunNumber("web-1"), 0);
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
  User u;
  u.name = "bob";
  u.password_hash = "secret-hash";
  EXPECT_FALSE(ToJson(u, false).contains("password_hash"));
  EXPECT_EQ(ToJson(u, false).dump().find("secret-hash"), std::string::npos);
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
  auto v = ParseVersion(Json::parse(R"({"status":"ready",
    "artifact":"sha256:abababababababababababababababababababababababababababababababab",
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

TEST(ModelTest, GitUrlsAreLimitedToRemoteTransportsAndLocalPaths) {
  for (const char* url : {"https://example.com/x.git", "http://127.0.0.1:8080/x",
                          "ssh://git@example.com:22/x.git", "git+ssh://example.com/x",
                          "git@example.com:org/x.git", "example.com:x.git",
                          "https://[::1]:8443/x.git"}) {
    auto k = CheckGitUrl(url, "source.url");
    ASSERT_TRUE(k.ok()) << url << ": " << k.status().ToString();
    EXPECT_EQ(*k, GitUrlKind::kRemote) << url;
  }
  for (const char* url : {"/srv/x.git", "file:///srv/x", "FILE:///srv/x"}) {
    auto k = CheckGitUrl(url, "source.url");
    ASSERT_TRUE(k.ok()) << url;
    EXPECT_EQ(*k, GitUrlKind::kLocal) << url;
    EXPECT_EQ(GitLocalPath(url).front(), '/');
  }
  for (const char* url : {"ext::sh -c touch% /tmp/x", "fd::3", "fd::17/x", "foo+bar::https://x",
                          "-uhelp", "--upload-pack=x", "git://example.com/x", "ftp://x/y",
                          "ssh://-oProxyCommand=x/y", "ssh://-u@host/x", "-o:y", "user@-host:x",
                          "https://exa mple.com/x", "https://x/\ny", "relative/dir", "x",
                          "file://relative", "https:///x"}) {
    auto k = CheckGitUrl(url, "source.url");
    ASSERT_FALSE(k.ok()) << url;
    EXPECT_EQ(k.status().reason(), "invalid_source") << url;
    EXPECT_EQ(k.status().field(), "source.url") << url;
  }
}

TEST(ModelTest, GitRefsCannotBeOptions) {
  for (const char* ref : {"", "main", "v1.2.3", "feature/x", "0123abcd"}) {
    EXPECT_TRUE(CheckGitRef(ref, "source.ref").ok()) << ref;
  }
  for (const char* ref : {"-x", "--upload-pack=x", "a..b", "a b", "x\ny", "HEAD@{1}", "a:b",
                          "a~1", "a^", "x*", "/x", "x/", "x.lock", "x.", "a//b"}) {
    Status s = CheckGitRef(ref, "source.ref");
    EXPECT_EQ(s.reason(), "invalid_source") << ref;
  }
}

TEST(ModelTest, VersionArtifactsAreDigestsNotPaths) {
  std::string hex(64, 'a');
  EXPECT_TRUE(ParseVersion(Json{{"artifact", "sha256:" + hex}}).ok());
  EXPECT_TRUE(ParseVersion(Json{{"artifact", ""}}).ok());
  for (const std::string& a : std::vector<std::string>{"../../etc", "/etc", "sha256:../x",
                                                       "sha256:" + hex + "/..",
                                                       "sha256:" + std::string(64, 'A'), hex}) {
    auto v = ParseVersion(Json{{"artifact", a}});
    ASSERT_FALSE(v.ok()) << a;
    EXPECT_EQ(v.status().reason(), "unsafe_path") << a;
    EXPECT_EQ(v.status().field(), "artifact");
  }
}

}  // namespace
}  // namespace berth::model
