// Unit tests for the CLI's pure logic and, through an injected fake server, for what each verb
// sends and prints.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli/cli.h"
#include "cli/client_config.h"
#include "cli/detail/commands.h"
#include "cli/detail/flags.h"
#include "cli/detail/http_client.h"
#include "cli/output.h"

namespace berth::cli {
namespace {

using ::testing::HasSubstr;

// ---- --port ---------------------------------------------------------------------------------

TEST(PortSpec, Parses) {
  auto p = ParsePortSpec("8080/http");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->port, 8080);
  EXPECT_EQ(p->protocol, "http");
  EXPECT_TRUE(p->inner);
  EXPECT_TRUE(p->outer);

  p = ParsePortSpec("5432/tcp:inner");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->port, 5432);
  EXPECT_EQ(p->protocol, "tcp");
  EXPECT_TRUE(p->inner);
  EXPECT_FALSE(p->outer);

  p = ParsePortSpec("80");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->port, 80);
  EXPECT_EQ(p->protocol, "http");
  EXPECT_TRUE(p->inner && p->outer);

  p = ParsePortSpec("9000/grpc:outer");
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->inner);
  EXPECT_TRUE(p->outer);
  EXPECT_EQ(PortSpecToJson(*p).dump(),
            R"({"port":9000,"protocol":"grpc","inner":false,"outer":true})");
}

TEST(PortSpec, RejectsBadOnesWithAMessage) {
  for (const char* bad : {"", "http", "0", "65536", "-1", "80/ftp", "80/", "80:sideways",
                          "80x", "/http", "80/http:"}) {
    auto p = ParsePortSpec(bad);
    ASSERT_FALSE(p.ok()) << bad;
    EXPECT_THAT(p.status().message(), HasSubstr("--port")) << bad;
    EXPECT_EQ(p.status().field(), "port");
  }
  EXPECT_THAT(ParsePortSpec("80/ftp").status().message(), HasSubstr("unknown protocol"));
}

TEST(PortSpec, FormatsForDisplay) {
  EXPECT_EQ(FormatPort(Json::parse(R"({"port":8080,"protocol":"http","inner":true,"outer":true})")),
            "8080/http");
  EXPECT_EQ(FormatPort(Json::parse(R"({"port":5432,"protocol":"tcp","inner":true,"outer":false})")),
            "5432/tcp:inner");
}

// ---- --env ----------------------------------------------------------------------------------

TEST(EnvAssignment, Parses) {
  auto e = ParseEnvAssignment("K=V", false);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->key, "K");
  EXPECT_EQ(e->value, "V");
  e = ParseEnvAssignment("URL=a=b", false);  // only the first '=' splits
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->value, "a=b");
  e = ParseEnvAssignment("K=", false);  // create: empty value
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->value, "");
  e = ParseEnvAssignment("K=", true);  // set: remove
  ASSERT_TRUE(e.ok());
  EXPECT_FALSE(e->value.has_value());
}

TEST(EnvAssignment, RejectsBadOnes) {
  for (const char* bad : {"K", "=V", "1K=V", "K-1=V", ""}) {
    auto e = ParseEnvAssignment(bad, true);
    EXPECT_FALSE(e.ok()) << bad;
    EXPECT_THAT(e.status().message(), HasSubstr("--env")) << bad;
  }
}

// ---- component bodies -------------------------------------------------------------------------

TEST(Duration, ParsesUnits) {
  EXPECT_EQ(*ParseDurationMs("1500ms", "--t"), 1500);
  EXPECT_EQ(*ParseDurationMs("30s", "--t"), 30000);
  EXPECT_EQ(*ParseDurationMs("30", "--t"), 30000);
  EXPECT_EQ(*ParseDurationMs("5m", "--t"), 300000);
  EXPECT_EQ(*ParseDurationMs("1h", "--t"), 3600000);
  for (const char* bad : {"", "s", "-1s", "1.5s", "1h30m", " 1s", "1 s", "10d", "1S",
                          "99999999999999h", "9000h"}) {
    auto r = ParseDurationMs(bad, "--idle-timeout");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().field(), "--idle-timeout");
    EXPECT_THAT(r.status().message(), HasSubstr("30s")) << bad;
  }
}

TEST(ComponentBody, CreateSendsTheGivenFields) {
  ComponentFlags f;
  f.kind = "service";
  f.ports = std::vector<std::string>{"8080/http", "5432/tcp:inner"};
  f.env = std::vector<std::string>{"A=1", "B="};
  f.replicas = 2;
  f.memory_mb = 256;
  f.source_dir = "src/../web";
  f.start_command = "./run";
  auto b = BuildComponentBody("web", f, false, "/home/me");
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(*b, Json::parse(R"({
    "name": "web", "kind": "service",
    "source": {"type": "dir", "path": "/home/me/web"},
    "build": {"start_command": "./run"},
    "ports": [{"port": 8080, "protocol": "http", "inner": true, "outer": true},
              {"port": 5432, "protocol": "tcp", "inner": true, "outer": false}],
    "env": {"A": "1", "B": ""},
    "resources": {"memory_mb": 256},
    "replicas": 2})"));
}

TEST(ComponentBody, PatchSendsOnlyChangesAndNullsRemovedEnv) {
  ComponentFlags f;
  f.env = std::vector<std::string>{"A=2", "OLD="};
  f.git_url = "https://example.com/x.git";
  auto b = BuildComponentBody("", f, true, "/");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b, Json::parse(R"({
    "source": {"type": "git", "url": "https://example.com/x.git", "ref": null, "path": null,
               "archive": null},
    "env": {"A": "2", "OLD": null}})"));
}

TEST(ComponentBody, Rejects) {
  ComponentFlags f;
  EXPECT_THAT(BuildComponentBody("", f, true, "/").status().message(), HasSubstr("nothing"));
  f.git_ref = "main";
  EXPECT_FALSE(BuildComponentBody("x", f, false, "/").ok());  // --ref without --git
  f.git_url = "u";
  f.archive = "a.tgz";
  EXPECT_FALSE(BuildComponentBody("x", f, false, "/").ok());  // two sources
  ComponentFlags k;
  k.kind = "daemon";
  EXPECT_FALSE(BuildComponentBody("x", k, false, "/").ok());
}

TEST(ComponentFlagsTest, JobSettingsGoInTheJobObject) {
  ComponentFlags f;
  f.retries = 2;
  f.job_timeout_s = 60;
  f.concurrency_policy = "forbid";
  f.suspend = "true";
  auto b = BuildComponentBody("", f, true, "/");
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ((*b)["job"], Json({{"retries", 2}, {"timeout_s", 60}, {"concurrency_policy", "forbid"},
                               {"suspend", true}}));
  f.suspend = "maybe";
  EXPECT_EQ(BuildComponentBody("", f, true, "/").status().field(), "job.suspend");
}

// ---- output ---------------------------------------------------------------------------------

TEST(Output, TableAlignsColumns) {
  std::string t = RenderTable({"NAME", "KIND", "REPLICAS"},
                              {{"web", "service", "2"}, {"database", "stateful", ""}});
  EXPECT_EQ(t,
            "NAME       KIND       REPLICAS\n"
            "web        service    2\n"
            "database   stateful\n");
}

TEST(Output, TableCountsUtf8AndCleansNewlines) {
  std::string t = RenderTable({"A", "B"}, {{"é", "x"}, {"a\nb", "y"}});
  EXPECT_EQ(t,
            "A     B\n"
            "é     x\n"
            "a b   y\n");
}

TEST(Output, JsonKeepsServerOrder) {
  Json j = Json::parse(R"({"z":1,"a":{"y":true,"b":null}})");
  EXPECT_EQ(RenderJson(j), "{\n  \"z\": 1,\n  \"a\": {\n    \"y\": true,\n    \"b\": null\n  }\n}\n");
}

TEST(Output, KeyValues) {
  Json j = Json::parse(R"({"name":"shop","quota":{"instances":0,"memory_mb":512},
                           "tags":["a","b"],"empty":{}})");
  EXPECT_EQ(RenderKeyValues(j),
            "name:            shop\n"
            "quota.instances: 0\n"
            "quota.memory_mb: 512\n"
            "tags:            a, b\n"
            "empty:\n");
  EXPECT_EQ(Cell(Json(true)), "true");
  EXPECT_EQ(Cell(Json()), "");
  EXPECT_TRUE(ParseOutputFormat("json").ok());
  EXPECT_FALSE(ParseOutputFormat("yaml").ok());
}

// ---- URLs -----------------------------------------------------------------------------------

TEST(ServerUrl, Parses) {
  auto u = ParseServerUrl("http://127.0.0.1:7070");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 7070);
  EXPECT_EQ(u->base_path, "");
  EXPECT_EQ(u->ToString(), "http://127.0.0.1:7070");

  u = ParseServerUrl("http://127.0.0.1:7070/");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->ToString(), "http://127.0.0.1:7070");

  u = ParseServerUrl("HTTP://berth.example");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->port, 80);
  EXPECT_EQ(u->ToString(), "http://berth.example:80");

  u = ParseServerUrl("http://[::1]:7070/prefix/");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->base_path, "/prefix");
  EXPECT_EQ(u->ToString(), "http://[::1]:7070/prefix");
}

TEST(ServerUrl, RejectsBadOnes) {
  for (const char* bad : {"", "127.0.0.1:7070", "ftp://x", "https://x", "http://", "http://:80",
                          "http://x:0", "http://x:99999", "http://x:", "http://x:y",
                          "http://x?y", "http://u@x", "http://[::1"}) {
    auto u = ParseServerUrl(bad);
    ASSERT_FALSE(u.ok()) << bad;
    EXPECT_EQ(u.status().field(), "server");
  }
  EXPECT_THAT(ParseServerUrl("https://x").status().message(), HasSubstr("https"));
}

// ---- config ---------------------------------------------------------------------------------

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "berth-cli-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string path() const { return path_; }

 private:
  std::string path_;
};

mode_t Mode(const std::string& p) {
  struct stat st {};
  ::stat(p.c_str(), &st);
  return st.st_mode & 0777;
}

TEST(ClientConfigTest, SaveAndLoadWithPermissions) {
  TempDir dir;
  std::string path = dir.path() + "/a/b/config";
  auto missing = LoadClientConfig(path);
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->token, "");

  ClientConfig c{"http://127.0.0.1:7070", "alice", "secret", "shop"};
  ASSERT_TRUE(SaveClientConfig(path, c).ok());
  EXPECT_EQ(Mode(path), 0600u);
  EXPECT_EQ(Mode(dir.path() + "/a"), 0700u);
  EXPECT_EQ(Mode(dir.path() + "/a/b"), 0700u);
  auto back = LoadClientConfig(path);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->server, c.server);
  EXPECT_EQ(back->user, "alice");
  EXPECT_EQ(back->token, "secret");
  EXPECT_EQ(back->team, "shop");

  // Overwriting keeps 0600 even if someone widened it.
  ::chmod(path.c_str(), 0644);
  c.token = "";
  ASSERT_TRUE(SaveClientConfig(path, c).ok());
  EXPECT_EQ(Mode(path), 0600u);
  EXPECT_EQ(LoadClientConfig(path)->token, "");
}

TEST(ClientConfigTest, MalformedFileIsAnError) {
  TempDir dir;
  std::string path = dir.path() + "/config";
  std::ofstream(path) << "{not json";
  auto c = LoadClientConfig(path);
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr(path));
  std::ofstream(path, std::ios::trunc) << R"({"server": 7})";
  EXPECT_FALSE(LoadClientConfig(path).ok());
  std::ofstream(path, std::ios::trunc) << R"({"server": "http://x:1", "extra": 1})";
  EXPECT_EQ(LoadClientConfig(path)->server, "http://x:1");
}

TEST(ClientConfigTest, PathAndOverrides) {
  std::map<std::string, std::string> env = {{"HOME", "/home/al"}};
  EnvLookup lookup = [&](const char* n) -> const char* {
    auto it = env.find(n);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  EXPECT_EQ(*ClientConfigPath(lookup), "/home/al/.config/berth/config");
  env["BERTH_CONFIG"] = "/tmp/x";
  EXPECT_EQ(*ClientConfigPath(lookup), "/tmp/x");
  EXPECT_FALSE(ClientConfigPath([](const char*) -> const char* { return nullptr; }).ok());

  ClientConfig stored{"http://stored:1", "al", "tok", ""};
  ClientConfig r = ResolveClientConfig(stored, lookup, "", "");
  EXPECT_EQ(r.server, "http://stored:1");
  EXPECT_EQ(r.token, "tok");
  EXPECT_EQ(r.team, "default");
  env["BERTH_SERVER"] = "http://env:2";
  env["BERTH_TOKEN"] = "envtok";
  r = ResolveClientConfig(stored, lookup, "", "t1");
  EXPECT_EQ(r.server, "http://env:2");
  EXPECT_EQ(r.token, "envtok");
  EXPECT_EQ(r.team, "t1");
  r = ResolveClientConfig(stored, lookup, "http://flag:3", "");
  EXPECT_EQ(r.server, "http://flag:3");
  EXPECT_EQ(ResolveClientConfig({}, nullptr, "", "").server, kDefaultServer);
}

// ---- verbs against a fake server ----------------------------------------------------------------

struct Sent {
  std::string method, server, path, body, token;
};

class CommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_["BERTH_CONFIG"] = dir_.path() + "/config";
  }

  // Queues the server's next answer.
  void Answer(int status, std::string body) { answers_.push_back({status, "", "", body}); }

  // Runs `berth args...`; returns the exit code (2 for usage errors, as main does).
  int Run(std::vector<std::string> args, std::string stdin_text = "", bool tty = false) {
    out_.str("");
    err_.str("");
    in_.str(stdin_text);
    in_.clear();
    ClientWorld w;
    w.in = &in_;
    w.out = &out_;
    w.err = &err_;
    w.cwd = "/work";
    w.env = [this](const char* n) -> const char* {
      auto it = env_.find(n);
      return it == env_.end() ? nullptr : it->second.c_str();
    };
    w.stdin_is_tty = [tty] { return tty; };
    w.read_secret = [this](const std::string& prompt) -> Result<std::string> {
      prompts_.push_back(prompt);
      return std::string("prompted-pw");
    };
    w.open_url = [this](const std::string& url) -> Status {
      opened_.push_back(url);
      return Status::Ok();
    };
    w.send = [this](const std::string& m, const std::string& s, const std::string& p,
                    const std::string& b, const std::string& t) -> Result<Response> {
      sent_.push_back({m, s, p, b, t});
      if (answers_.empty()) return Unavailable("cannot reach berth server at " + s);
      Response r = answers_.front();
      answers_.erase(answers_.begin());
      return r;
    };
    CLI::App app{"berth"};
    app.require_subcommand(1);
    int code = 0;
    RegisterClientCommandsWithWorld(app, &code, std::move(w));
    std::vector<std::string> argv_s = {"berth"};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    // As main does.
    std::ostringstream help_out;
    int rc = ParseAndRun(app, static_cast<int>(argv.size()), argv.data(), code, help_out, err_);
    out_ << help_out.str();
    return rc;
  }

  Json SentBody(size_t i = 0) { return Json::parse(sent_.at(i).body); }
  ClientConfig Stored() { return *LoadClientConfig(env_["BERTH_CONFIG"]); }

  TempDir dir_;
  std::map<std::string, std::string> env_;
  std::istringstream in_;
  std::ostringstream out_, err_;
  std::vector<Response> answers_;
  std::vector<Sent> sent_;
  std::vector<std::string> prompts_;
  std::vector<std::string> opened_;
};

TEST_F(CommandTest, LoginWithPasswordStdinStoresTheToken) {
  Answer(200, R"({"token":"t0k","user":"alice","expires_at":"2030-01-01T00:00:00Z"})");
  ASSERT_EQ(Run({"login", "--server", "http://127.0.0.1:7070/", "--user", "alice",
                 "--password-stdin"},
                "s3cret pw\n"),
            0)
      << err_.str();
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(sent_[0].method, "POST");
  EXPECT_EQ(sent_[0].path, "/api/v1/login");
  EXPECT_EQ(sent_[0].server, "http://127.0.0.1:7070/");
  EXPECT_EQ(sent_[0].token, "");
  EXPECT_EQ(SentBody(), Json::parse(R"({"user":"alice","password":"s3cret pw"})"));
  ClientConfig c = Stored();
  EXPECT_EQ(c.server, "http://127.0.0.1:7070");
  EXPECT_EQ(c.user, "alice");
  EXPECT_EQ(c.token, "t0k");
  EXPECT_EQ(c.team, "default");
  EXPECT_EQ(Mode(env_["BERTH_CONFIG"]), 0600u);
  EXPECT_THAT(out_.str(), HasSubstr("logged in to http://127.0.0.1:7070 as alice"));
  EXPECT_THAT(out_.str(), ::testing::Not(HasSubstr("t0k")));
}

TEST_F(CommandTest, LoginPromptsOnATerminal) {
  Answer(200, R"({"token":"t","user":"bob"})");
  ASSERT_EQ(Run({"login", "--user", "bob"}, "", /*tty=*/true), 0) << err_.str();
  ASSERT_EQ(prompts_.size(), 1u);
  EXPECT_EQ(SentBody()["password"], "prompted-pw");
  EXPECT_EQ(sent_[0].server, std::string(kDefaultServer));
}

TEST_F(CommandTest, ServerErrorsPrintCodeAndFieldAndExit1) {
  ASSERT_TRUE(SaveClientConfig(env_["BERTH_CONFIG"], {"http://h:1", "al", "tok", "shop"}).ok());
  Answer(400, R"({"code":"invalid_name","message":"app name \"A\" is not a DNS label","field":"name"})");
  EXPECT_EQ(Run({"app", "create", "A"}), 1);
  EXPECT_EQ(sent_[0].path, "/api/v1/teams/shop/apps");
  EXPECT_EQ(sent_[0].token, "tok");
  EXPECT_EQ(err_.str(),
            "error: app name \"A\" is not a DNS label (invalid_name)\nfield: name\n");
  EXPECT_EQ(out_.str(), "");
}

TEST_F(CommandTest, UnreachableServer) {
  EXPECT_EQ(Run({"team", "list"}), 1);
  EXPECT_THAT(err_.str(), HasSubstr("error: cannot reach berth server at http://127.0.0.1:7070"));
}

TEST_F(CommandTest, ListFollowsPagination) {
  Answer(200, R"({"items":[{"name":"a","display_name":"A","created_at":"t1"}],"next":"a","revision":7})");
  Answer(200, R"({"items":[{"name":"b","display_name":"","created_at":"t2"}],"next":"","revision":8})");
  ASSERT_EQ(Run({"app", "list", "--team", "shop"}), 0) << err_.str();
  ASSERT_EQ(sent_.size(), 2u);
  EXPECT_EQ(sent_[0].path, "/api/v1/teams/shop/apps?limit=500");
  EXPECT_EQ(sent_[1].path, "/api/v1/teams/shop/apps?limit=500&after=a");
  EXPECT_EQ(out_.str(),
            "NAME   DISPLAY NAME   CREATED\n"
            "a      A              t1\n"
            "b                     t2\n");
}

TEST_F(CommandTest, ListJsonIsTheApiJson) {
  std::string api = R"({"items":[{"name":"default","display_name":"Default"}],"next":"","revision":3})";
  Answer(200, api);
  ASSERT_EQ(Run({"team", "list", "-o", "json"}), 0);
  EXPECT_EQ(out_.str(), Json::parse(api).dump(2) + "\n");
}

TEST_F(CommandTest, AuditRespectsLimit) {
  Answer(200, R"({"items":[{"time":"t","actor":"al","action":"create","resource":"apps/x"}],"next":"n1"})");
  ASSERT_EQ(Run({"audit", "list", "--limit", "1"}), 0) << err_.str();
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(sent_[0].path, "/api/v1/teams/default/audit?limit=1");
  EXPECT_THAT(out_.str(), HasSubstr("TIME   ACTOR   ACTION   RESOURCE\n"));
}

TEST_F(CommandTest, ComponentCreateAndSet) {
  Answer(200, R"({"name":"web","kind":"service","ports":[{"port":8080,"protocol":"http","inner":true,"outer":true}]})");
  ASSERT_EQ(Run({"component", "create", "web", "--app", "shop", "--port", "8080/http", "--env",
                 "A=1", "--source", "site", "--replicas", "2", "--no-deploy"}),
            0)
      << err_.str();
  EXPECT_EQ(sent_[0].method, "POST");
  EXPECT_EQ(sent_[0].path, "/api/v1/teams/default/apps/shop/components");
  EXPECT_EQ(SentBody(), Json::parse(R"({"name":"web","source":{"type":"dir","path":"/work/site"},
      "ports":[{"port":8080,"protocol":"http","inner":true,"outer":true}],"env":{"A":"1"},
      "replicas":2})"));
  EXPECT_THAT(out_.str(), HasSubstr("ports: 8080/http\n"));

  Answer(200, R"({"name":"web"})");
  ASSERT_EQ(Run({"component", "set", "web", "--app", "shop", "--env", "A=", "--memory", "64"}), 0)
      << err_.str();
  EXPECT_EQ(sent_[1].method, "PATCH");
  EXPECT_EQ(sent_[1].path, "/api/v1/teams/default/apps/shop/components/web");
  EXPECT_EQ(SentBody(1), Json::parse(R"({"env":{"A":null},"resources":{"memory_mb":64}})"));
}

TEST_F(CommandTest, DomainAddBuildsTheRuleWithCanaries) {
  Answer(201, R"({"name":"shop-example-com-api","domain":"shop.example.com","path_prefix":"/api",
      "certificate":"","backends":[{"component":"web","port":8080,"version":"v6","weight":80},
      {"component":"web","port":0,"version":"v7","weight":10},
      {"component":"next","port":9000,"version":"","weight":10}]})");
  ASSERT_EQ(Run({"domain", "add", "shop.example.com", "--app", "shop", "--component", "web",
                 "--version", "v6", "--path", "/api", "--canary", "@v7=10", "--canary",
                 "next:9000=10", "--header", "X-A=1", "--cookie", "b=2", "--rate-limit", "2.5:5",
                 "--balance", "hash_ip", "--max-body", "1024"}),
            0)
      << err_.str();
  EXPECT_EQ(sent_[0].method, "POST");
  EXPECT_EQ(sent_[0].path, "/api/v1/teams/default/apps/shop/http-rules");
  EXPECT_EQ(SentBody(), Json::parse(R"({"domain":"shop.example.com",
      "backends":[{"component":"web","port":0,"version":"v6","weight":80},
                  {"component":"web","port":0,"version":"v7","weight":10},
                  {"component":"next","port":9000,"version":"","weight":10}],
      "path_prefix":"/api","headers":[{"name":"X-A","value":"1"}],
      "cookies":[{"name":"b","value":"2"}],"balance":"hash_ip","max_body_bytes":1024,
      "rate_limit":{"requests_per_second":2.5,"burst":5}})"));
  EXPECT_THAT(out_.str(), HasSubstr("routing http://shop.example.com/api to "
                                    "web:8080@v6=80%,web@v7=10%,next:9000=10%"));
}

TEST_F(CommandTest, TcpAddSendsTimeoutsInMilliseconds) {
  Answer(201, R"({"name":"tcp-15432","listen_port":15432,"component":"db","port":5432,
      "idle_timeout_ms":30000,"connect_timeout_ms":2000})");
  ASSERT_EQ(Run({"tcp", "add", "15432", "--app", "shop", "--component", "db", "--idle-timeout",
                 "30s", "--connect-timeout", "2000ms"}),
            0)
      << err_.str();
  EXPECT_EQ(sent_[0].path, "/api/v1/teams/default/apps/shop/tcp-rules");
  EXPECT_EQ(SentBody(), Json::parse(R"({"listen_port":15432,"component":"db",
      "idle_timeout_ms":30000,"connect_timeout_ms":2000})"));
  EXPECT_EQ(Run({"tcp", "add", "15432", "--app", "shop", "--component", "db", "--idle-timeout",
                 "forever"}),
            2);
  EXPECT_THAT(err_.str(), HasSubstr("--idle-timeout takes a duration"));
  EXPECT_EQ(sent_.size(), 1u);
}

TEST_F(CommandTest, GatewayUsageErrorsSendNothing) {
  EXPECT_EQ(Run({"domain", "add", "a.example.com", "--app", "shop", "--component", "web",
                 "--canary", "next=60", "--canary", "@v2=40"}),
            2);
  EXPECT_THAT(err_.str(), HasSubstr("add up to 100"));
  EXPECT_EQ(Run({"domain", "add", "a.example.com", "--app", "shop", "--component", "web",
                 "--canary", "next"}),
            2);
  EXPECT_EQ(Run({"domain", "add", "a.example.com", "--app", "shop", "--component", "web",
                 "--header", "novalue"}),
            2);
  EXPECT_EQ(Run({"domain", "add", "a.example.com", "--app", "shop", "--component", "web",
                 "--rate-limit", "fast"}),
            2);
  EXPECT_EQ(Run({"cert", "add", "c", "--cert", "/nonexistent/c.pem", "--key", "/nonexistent/k.pem"}), 2);
  EXPECT_TRUE(sent_.empty());
}

TEST_F(CommandTest, DomainRemoveByDomainFindsTheRule) {
  Answer(200, R"({"items":[{"name":"a","domain":"shop.example.com","path_prefix":"/"},
                           {"name":"b","domain":"shop.example.com","path_prefix":"/api"}],"next":""})");
  Answer(200, R"({"deleted":"http_rule","name":"b"})");
  ASSERT_EQ(Run({"domain", "remove", "Shop.Example.com", "--app", "shop", "--path", "/api/"}), 0)
      << err_.str();
  EXPECT_EQ(sent_[1].method, "DELETE");
  EXPECT_EQ(sent_[1].path, "/api/v1/teams/default/apps/shop/http-rules/b");
  Answer(200, R"({"items":[{"name":"a","domain":"shop.example.com","path_prefix":"/"},
                           {"name":"b","domain":"shop.example.com","path_prefix":"/api"}],"next":""})");
  EXPECT_EQ(Run({"domain", "remove", "shop.example.com", "--app", "shop"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("several rules (a, b)"));
}

TEST_F(CommandTest, CertListShowsDomainsAndExpiry) {
  Answer(200, R"({"items":[{"name":"shop","domains":["shop.example.com","*.shop.example.com"],
      "not_after":"2027-01-01T00:00:00Z","expired":false,"issuer":"CN=ca"}],"next":""})");
  ASSERT_EQ(Run({"cert", "list"}), 0) << err_.str();
  EXPECT_EQ(sent_[0].path, "/api/v1/teams/default/certificates?limit=500");
  EXPECT_THAT(out_.str(), HasSubstr("NAME   DOMAINS"));
  EXPECT_THAT(out_.str(), HasSubstr("shop   shop.example.com,*.shop.example.com   2027-01-01T00:00:00Z   no"));
}

TEST_F(CommandTest, UsageErrorsExit2AndSendNothing) {
  EXPECT_EQ(Run({"component", "create", "web", "--app", "shop", "--port", "80/ftp"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("unknown protocol"));
  EXPECT_EQ(Run({"component", "set", "web", "--app", "shop"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("nothing to change"));
  EXPECT_EQ(Run({"component", "create", "web"}), 2);  // --app missing
  EXPECT_EQ(Run({"team", "list", "-o", "yaml"}), 2);
  EXPECT_EQ(Run({"team", "list", "--server", "https://x"}), 2);
  EXPECT_EQ(Run({"team", "member", "add", "bob", "--role", "king"}), 2);
  EXPECT_TRUE(sent_.empty());
}

TEST_F(CommandTest, VersionAndUnknownCommands) {
  EXPECT_EQ(Run({"--version"}), 0);
  EXPECT_EQ(out_.str(), std::string("berth ") + BERTH_VERSION_FOR_TEST + "\n");
  EXPECT_EQ(Run({"aps"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("error: unknown command \"aps\"; did you mean `berth app`"));
  EXPECT_THAT(err_.str(), HasSubstr("`berth ps`"));
  EXPECT_EQ(Run({"app", "lst"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("unknown command \"app lst\"; did you mean `berth app list`"));
  EXPECT_EQ(Run({"zzzzzz"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("unknown command \"zzzzzz\" (`berth --help` lists"));
  // Words after a verb are its arguments, not commands.
  Answer(200, R"({"name":"lst"})");
  EXPECT_EQ(Run({"app", "show", "lst"}), 0);
  EXPECT_EQ(sent_.size(), 1u);
}

TEST_F(CommandTest, JsonOutputMakesErrorsJson) {
  ASSERT_TRUE(SaveClientConfig(env_["BERTH_CONFIG"], {"http://h:1", "al", "tok", "shop"}).ok());
  Answer(404, R"({"code":"not_found","message":"app \"nope\" not found","field":"app"})");
  EXPECT_EQ(Run({"app", "show", "nope", "-o", "json"}), 1);
  EXPECT_EQ(out_.str(), "");
  EXPECT_EQ(Json::parse(err_.str()),
            Json::parse(R"({"error":{"code":"not_found","message":"app \"nope\" not found","field":"app"}})"));
  // The same from the other two verb styles (runtime verbs; build verbs).
  Answer(409, R"({"code":"operation_in_progress","message":"busy"})");
  EXPECT_EQ(Run({"scale", "web", "2", "--app", "shop", "-o", "json"}), 1);
  EXPECT_EQ(Json::parse(err_.str())["error"]["code"], "operation_in_progress");
  Answer(404, R"({"code":"not_found","message":"no such component"})");
  EXPECT_EQ(Run({"versions", "web", "--app", "shop", "--output=json"}), 1);
  EXPECT_EQ(Json::parse(err_.str())["error"]["code"], "not_found");
  // The client's own failures and usage errors too.
  EXPECT_EQ(Run({"team", "list", "-o", "json"}), 1);
  EXPECT_EQ(Json::parse(err_.str())["error"]["code"], "unavailable");
  EXPECT_EQ(Run({"component", "create", "web", "-o", "json"}), 2);  // --app missing
  Json usage = Json::parse(err_.str());
  EXPECT_EQ(usage["error"]["code"], "usage");
  EXPECT_THAT(usage["error"]["message"].get<std::string>(), HasSubstr("--app"));
  EXPECT_EQ(Run({"aps", "-o", "json"}), 2);
  EXPECT_EQ(Json::parse(err_.str())["error"]["code"], "usage");
  // 401: the hint comes along.
  Answer(401, R"({"code":"unauthenticated","message":"token expired"})");
  EXPECT_EQ(Run({"app", "list", "-o", "json"}), 1);
  EXPECT_THAT(Json::parse(err_.str())["error"]["hint"].get<std::string>(), HasSubstr("berth login"));
}

TEST_F(CommandTest, DestructiveVerbsConfirm) {
  // No terminal, no --yes: a usage error naming --yes, nothing sent.
  EXPECT_EQ(Run({"app", "delete", "shop"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("--yes"));
  EXPECT_EQ(Run({"component", "delete", "web", "--app", "shop"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("--yes"));
  EXPECT_EQ(Run({"team", "delete", "t1"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("--yes"));
  EXPECT_EQ(Run({"team", "delete", "t1", "-o", "json"}), 2);
  EXPECT_THAT(Json::parse(err_.str())["error"]["message"].get<std::string>(), HasSubstr("--yes"));
  EXPECT_TRUE(sent_.empty());
  // On a terminal: the name typed back deletes; anything else does not.
  EXPECT_EQ(Run({"app", "delete", "shop"}, "shp\n", /*tty=*/true), 1);
  EXPECT_THAT(err_.str(), HasSubstr("Type \"shop\" to confirm"));
  EXPECT_THAT(err_.str(), HasSubstr("nothing was deleted"));
  EXPECT_TRUE(sent_.empty());
  Answer(200, R"({"deleted":"app","name":"shop"})");
  EXPECT_EQ(Run({"app", "delete", "shop"}, "shop\n", /*tty=*/true), 0) << err_.str();
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(sent_[0].method, "DELETE");
  EXPECT_EQ(out_.str(), "deleted app shop\n");
  // --yes (or -y): no question.
  Answer(200, R"({"deleted":"component","name":"web"})");
  EXPECT_EQ(Run({"component", "delete", "web", "--app", "shop", "-y"}), 0) << err_.str();
  Answer(200, R"({"deleted":"team","name":"t1"})");
  EXPECT_EQ(Run({"team", "delete", "t1", "--yes"}), 0) << err_.str();
  EXPECT_EQ(sent_.size(), 3u);
}

TEST_F(CommandTest, ConfigSetIsOnePatchOfTheEnv) {
  Answer(200, R"({"name":"web","kind":"service","replicas":1,"desired_state":"running","env":{"A":"1","B":"x=y"}})");
  EXPECT_EQ(Run({"config", "set", "A=1", "B=x=y", "--component", "web", "--app", "shop"}), 0)
      << err_.str();
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(sent_[0].method, "PATCH");
  EXPECT_EQ(sent_[0].path, "/api/v1/teams/default/apps/shop/components/web");
  EXPECT_EQ(SentBody(), Json::parse(R"({"env":{"A":"1","B":"x=y"}})"));
  EXPECT_THAT(out_.str(), HasSubstr("set A, B on web; its instances are replaced once"));
  EXPECT_THAT(out_.str(), HasSubstr("`berth wait web --app shop --operation`"));
  // unset: only the keys that are set, as nulls.
  Answer(200, R"({"name":"web","env":{"A":"1","B":"2"}})");
  Answer(200, R"({"name":"web","kind":"service","replicas":1,"desired_state":"running","env":{"B":"2"}})");
  EXPECT_EQ(Run({"config", "unset", "A", "C", "--component", "web", "--app", "shop"}), 0);
  EXPECT_EQ(Json::parse(sent_.back().body), Json::parse(R"({"env":{"A":null}})"));
  EXPECT_THAT(err_.str(), HasSubstr("C was not set"));
  Answer(200, R"({"name":"web","env":{"B":"2"}})");
  EXPECT_EQ(Run({"config", "unset", "Z", "--component", "web", "--app", "shop"}), 1);
  EXPECT_THAT(err_.str(), HasSubstr("Z is not set on web: nothing changed"));
  // get: one value, or every one.
  Answer(200, R"({"name":"web","env":{"B":"2","A":"1"}})");
  EXPECT_EQ(Run({"config", "get", "B", "--component", "web", "--app", "shop"}), 0);
  EXPECT_EQ(out_.str(), "2\n");
  Answer(200, R"({"name":"web","env":{"A":"1","B":"2"}})");
  EXPECT_EQ(Run({"config", "get", "--component", "web", "--app", "shop"}), 0);
  EXPECT_EQ(out_.str(), "KEY   VALUE\nA     1\nB     2\n");
  EXPECT_EQ(Run({"config", "set", "NOEQUALS", "--component", "web", "--app", "shop"}), 2);
}

TEST_F(CommandTest, OpenPrintsTheAddressAndOpensIt) {
  Answer(200, R"({"name":"web","addresses":["http://web.shop.localhost:8080"]})");
  EXPECT_EQ(Run({"open", "web", "--app", "shop"}), 0) << err_.str();
  EXPECT_EQ(out_.str(), "http://web.shop.localhost:8080\n");
  EXPECT_EQ(opened_, std::vector<std::string>{"http://web.shop.localhost:8080"});
  Answer(200, R"({"name":"worker","addresses":[]})");
  EXPECT_EQ(Run({"open", "worker", "--app", "shop"}), 1);
  EXPECT_THAT(err_.str(), HasSubstr("`berth component set worker --app shop --port 8080/http`"));
}

TEST(Output, TablesDropTerminalEscapes) {
  std::string t = RenderTable({"A", "B"}, {{"\x1b[1mApache Maven 3.8.7\x1b[m", "x\x1b]0;title\ay"}});
  EXPECT_EQ(t, "A                    B\nApache Maven 3.8.7   xy\n");
  EXPECT_EQ(StripTerminalControls("a\x1b[0;31mred\x1b[0m\a" "b"), "aredb");
  EXPECT_EQ(RenderKeyValues(Json{{"v", "\x1b[1mbold\x1b[m"}}), "v: bold\n");
}

TEST_F(CommandTest, TeamUseChecksThenStores) {
  Answer(404, R"({"code":"not_found","message":"team \"nope\" not found"})");
  EXPECT_EQ(Run({"team", "use", "nope"}), 1);
  EXPECT_EQ(Stored().team, "");
  Answer(200, R"({"name":"shop"})");
  EXPECT_EQ(Run({"team", "use", "shop"}), 0);
  EXPECT_EQ(sent_[1].method, "GET");
  EXPECT_EQ(sent_[1].path, "/api/v1/teams/shop");
  EXPECT_EQ(Stored().team, "shop");
  EXPECT_EQ(out_.str(), "now using team shop\n");
}

TEST_F(CommandTest, LogoutClearsTheToken) {
  ASSERT_TRUE(SaveClientConfig(env_["BERTH_CONFIG"], {"http://h:1", "al", "tok", "shop"}).ok());
  Answer(200, "{}");
  EXPECT_EQ(Run({"logout"}), 0) << err_.str();
  EXPECT_EQ(sent_[0].method, "POST");
  EXPECT_EQ(sent_[0].path, "/api/v1/logout");
  EXPECT_EQ(sent_[0].token, "tok");
  EXPECT_EQ(Stored().token, "");
  EXPECT_EQ(Stored().team, "shop");
  EXPECT_EQ(Run({"logout"}), 1);
  EXPECT_THAT(err_.str(), HasSubstr("not logged in"));
}

TEST_F(CommandTest, UserCreateUpdateAndDelete) {
  Answer(200, R"({"name":"bob","admin":true})");
  EXPECT_EQ(Run({"user", "create", "bob", "--password-stdin", "--admin", "--email", "b@x"},
                "pw123456\n"),
            0);
  EXPECT_EQ(SentBody(0),
            Json::parse(R"({"name":"bob","email":"b@x","admin":true,"password":"pw123456"})"));
  Answer(200, R"({"name":"bob"})");
  EXPECT_EQ(Run({"user", "update", "bob", "--disabled", "true"}), 0);
  EXPECT_EQ(sent_[1].method, "PATCH");
  EXPECT_EQ(SentBody(1), Json::parse(R"({"disabled":true})"));
  Answer(200, "");
  EXPECT_EQ(Run({"user", "delete", "bob"}), 0);
  EXPECT_EQ(sent_[2].method, "DELETE");
  EXPECT_EQ(sent_[2].path, "/api/v1/users/bob");
  EXPECT_EQ(out_.str(), "deleted user bob\n");
}

TEST_F(CommandTest, TeamUpdateAndMembersAndDependencies) {
  Answer(200, R"({"name":"shop"})");
  EXPECT_EQ(Run({"team", "update", "shop", "--quota-memory-mb", "1024"}), 0) << err_.str();
  EXPECT_EQ(SentBody(0), Json::parse(R"({"quota":{"memory_mb":1024}})"));
  Answer(200, R"({"user":"bob","role":"viewer"})");
  EXPECT_EQ(Run({"team", "member", "add", "bob", "--role", "viewer", "--team", "shop"}), 0);
  EXPECT_EQ(sent_[1].path, "/api/v1/teams/shop/members");
  EXPECT_EQ(SentBody(1), Json::parse(R"({"user":"bob","role":"viewer"})"));
  Answer(200, R"({"name":"db","target_app":"shop","target_component":"db"})");
  EXPECT_EQ(Run({"dependency", "add", "--app", "shop", "--component", "web", "--on", "db"}), 0);
  EXPECT_EQ(sent_[2].path, "/api/v1/teams/default/apps/shop/components/web/dependencies");
  EXPECT_EQ(SentBody(2), Json::parse(R"({"target_component":"db"})"));
  Answer(200, R"({"id":"tk1","name":"ci","token":"secret"})");
  EXPECT_EQ(Run({"token", "create", "ci", "--ttl-hours", "24"}), 0);
  EXPECT_EQ(SentBody(3), Json::parse(R"({"name":"ci","ttl_hours":24})"));
  EXPECT_THAT(out_.str(), HasSubstr("token: secret"));
}

// ---- the real HTTP client against a tiny loopback server -----------------------------------

// Accepts one connection on a free loopback port, records the request head, sends `reply`.
class OneShotServer {
 public:
  explicit OneShotServer(std::string reply) : reply_(std::move(reply)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 1);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      char buf[4096];
      while (request_.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::read(c, buf, sizeof buf);
        if (n <= 0) break;
        request_.append(buf, static_cast<size_t>(n));
      }
      ::write(c, reply_.data(), reply_.size());
      ::close(c);
    });
  }
  ~OneShotServer() {
    ::shutdown(fd_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  const std::string& request() {
    if (thread_.joinable()) thread_.join();
    return request_;
  }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::string reply_;
  std::string request_;
  std::thread thread_;
};

TEST(HttpClient, RequestSendsTokenAndReadsTheAnswer) {
  OneShotServer server(
      "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 20\r\n"
      "Connection: close\r\n\r\n{\"code\":\"not_found\"}");
  auto r = Request("GET", server.url() + "/", "/api/v1/teams/x", "", "tok");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->content_type, "application/json");
  EXPECT_EQ(r->body, "{\"code\":\"not_found\"}");
  EXPECT_THAT(server.request(), HasSubstr("GET /api/v1/teams/x HTTP/1.1\r\n"));
  EXPECT_THAT(server.request(), HasSubstr("Authorization: Bearer tok\r\n"));
}

TEST(HttpClient, StreamDeliversLines) {
  OneShotServer server(
      "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n"
      "\r\n"
      "8\r\n{\"a\":1}\n\r\n"
      "4\r\n{\"b\"\r\n"
      "4\r\n:2}\n\r\n"
      "0\r\n\r\n");
  std::vector<std::string> lines;
  auto r = RequestStream("GET", server.url(), "/api/v1/watch", "", "",
                         [&](std::string_view l) {
                           lines.emplace_back(l);
                           return true;
                         });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_THAT(lines, ::testing::ElementsAre("{\"a\":1}", "{\"b\":2}"));
}

TEST(HttpClient, UnreachableServerSaysSo) {
  // A port that was just free: bind, read the port, close.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  std::string url = "http://127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  auto r = Request("GET", url, "/healthz", "", "");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "cannot reach berth server at " + url +
                                      ": Connection refused \u2014 is `berth server` running?");
}

}  // namespace
}  // namespace berth::cli
