// berth's object model (DESIGN.md §1): the typed shape of every kind the store holds, how
// each is read from an API body (strictly: unknown fields and bad values are errors naming
// the field) and how it is written back as JSON (the stored body and, minus secrets, the API
// representation).
//
// Parse* functions validate everything that can be checked on the object alone (names,
// ranges, enums, paths); checks that need other objects (a dependency's target exists) belong
// to the API. Thread-safety: pure functions over values.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "model/json_util.h"

namespace berth::model {

// Store kinds.
inline constexpr char kUser[] = "user";
inline constexpr char kToken[] = "token";
inline constexpr char kTeam[] = "team";
inline constexpr char kMember[] = "member";
inline constexpr char kApp[] = "app";
inline constexpr char kComponent[] = "component";
inline constexpr char kDependency[] = "dependency";
inline constexpr char kVersion[] = "version";
inline constexpr char kInstance[] = "instance";
inline constexpr char kEvent[] = "event";
// The sandbox identity of a team (sandbox/identity.h): kind "team_uid", scope "", named by the
// team, {"uid": N}; and its claim on the number, kind "uid_claim", scope "", named by the
// number, {"team": name}, so no two teams ever share a uid. Both outlive the team: a uid is
// never given to another team.
inline constexpr char kTeamUid[] = "team_uid";
inline constexpr char kUidClaim[] = "uid_claim";
// A component's webhook (api/webhook_routes.cc); one per component, named "webhook".
inline constexpr char kWebhook[] = "webhook";
// A component's current lifecycle operation (deploy, scale, ...): one object named "current"
// under the component's scope, written by the API (and the deploy controller for deploys it
// starts itself) and ended by the deploy controller.
inline constexpr char kOperation[] = "operation";
// One run of a job or cronjob component (kind "run", named "run-<n>" under the component's
// scope): created by the API (a manual run) or the deploy controller (a deploy of a job, a
// cronjob's schedule), finished and pruned by the controller.
inline constexpr char kRun[] = "run";

enum class Role { kViewer = 0, kDeveloper = 1, kAdmin = 2, kOwner = 3 };
const char* RoleName(Role r);
std::optional<Role> ParseRole(const std::string& s);

// ---- users, tokens, teams, members -------------------------------------------------------

struct User {
  std::string name;
  std::string display_name;
  std::string email;
  bool admin = false;     // platform administrator
  bool disabled = false;
  // A service account berth made for itself (the gateway's `berth-gateway`): authenticates
  // with a token only, hidden from user lists by default, never changed or deleted through
  // the API. The API refuses `service: true` from users.
  bool service = false;
  std::string password_hash;  // never leaves the server
};
// Input fields besides the user's own: "password", "current_password" (write-only).
struct UserInput {
  User user;
  std::optional<std::string> password;
  std::optional<std::string> current_password;
};
Result<UserInput> ParseUser(const Json& in);
Json ToJson(const User& u, bool include_secrets);

// Tokens live under their user's own scope "user:<name>" — a path no team can have (team names
// are DNS labels, without ':'), so deleting a team (a tree delete of its scope) can never take
// a user's tokens with it, and a user's tokens go with one tree delete of this scope.
inline std::string TokenScope(const std::string& user) { return "user:" + user; }

// Names no user or team may take: the service accounts berth makes for itself and "berth", the
// actor of the platform's own audit entries (409 name_reserved).
bool ReservedName(const std::string& name);

struct Token {
  std::string id;
  std::string name;
  std::string user;
  int64_t expires_at_ms = 0;  // 0 = never
  int64_t last_used_at_ms = 0;
};
struct TokenInput {
  std::string name;
  int64_t ttl_hours = 0;  // 0 = the server's default
  int64_t ttl_seconds = 0;  // instead of ttl_hours, for short-lived tokens (at most one)
};
Result<TokenInput> ParseTokenInput(const Json& in);
Result<Token> TokenFromJson(const Json& stored);
Json ToJson(const Token& t);

struct Quota {
  int64_t instances = 0;   // 0 = unlimited
  int64_t memory_mb = 0;
  int64_t cpu_millis = 0;
  // The size of the team's disk (builds, caches, volumes, artifacts) when the sandbox gives it
  // one (sandbox/team_disk.h); 0 = the server's --team-disk-mb. It grows online; it never
  // shrinks.
  int64_t disk_mb = 0;
};
struct Team {
  std::string name;
  std::string display_name;
  Quota quota;
  // Who created it (set by the server; read-only): counts against that user's
  // max_teams_per_user while the team exists.
  std::string created_by;
};
Result<Team> ParseTeam(const Json& in);
Json ToJson(const Team& t);

// ---- platform settings (docs/security.md "Who may create teams") ----------------------------

// One object (kind "setting", scope "", name "platform"), changed by platform administrators.
inline constexpr char kSetting[] = "setting";
inline constexpr char kPlatformSettings[] = "platform";
struct PlatformSettings {
  // Who may create teams: "admins" (platform administrators only, the default) or "everyone"
  // (any user; the creator owns the team).
  std::string team_creation = "admins";
  // Teams a user who is not a platform administrator may have created and not yet deleted.
  int64_t max_teams_per_user = 3;
  // The quota a team created by such a user gets (they cannot set or change quotas), so
  // creating more teams never escapes quotas: a user's share is at most max_teams_per_user
  // times this.
  Quota default_team_quota{10, 0, 0};
};
Result<PlatformSettings> ParsePlatformSettings(const Json& in);
Json ToJson(const PlatformSettings& s);

struct Member {
  std::string user;
  Role role = Role::kViewer;
};
Result<Member> ParseMember(const Json& in);
Json ToJson(const Member& m);

// ---- apps and components ------------------------------------------------------------------

struct App {
  std::string name;
  std::string display_name;
  std::string description;
};
Result<App> ParseApp(const Json& in);
Json ToJson(const App& a);

struct Source {
  std::string type = "none";  // none | dir | git | archive | package
  std::string path;           // dir / package
  std::string url;            // git
  std::string ref;            // git branch, tag or commit
  std::string archive;        // archive: an uploaded archive's id or a local file path
};
struct BuildSettings {
  std::string command;
  std::string start_command;
  std::string language;
  std::string language_version;
  std::string subdir;
};
struct Port {
  int port = 0;
  std::string protocol = "http";  // http | tcp | udp | grpc
  bool inner = true;
  bool outer = false;
  std::string name;
  // "auto" in JSON: the builder declared it (builder/auto_port.h), not the user. Kept through
  // every write that does not set the ports, so a later build may still move or remove it.
  bool automatic = false;
};
struct ConfigFile {
  std::string path;
  std::string content;
};
struct Volume {
  std::string name;
  std::string path;
  bool shared = false;
};
struct Probe {
  std::string type = "tcp";  // tcp | http | command
  int port = 0;              // 0 = the component's first port
  std::string path = "/";
  std::string command;
  int interval_s = 5;
  int timeout_s = 2;
  int failure_threshold = 3;
  int expect_status = 0;     // 0 = any 2xx or 3xx
};
struct Health {
  std::optional<Probe> startup;
  std::optional<Probe> readiness;
  std::optional<Probe> liveness;
};
struct Resources {
  int64_t memory_mb = 0;   // 0 = no limit
  int64_t cpu_millis = 0;
};
// A count of instances or a percentage of the replicas ("25%" in JSON), as in a rolling
// update's surge and unavailability.
struct Amount {
  int value = 0;
  bool percent = false;
  // The count for `replicas`: percentages round up (surge) or down (unavailability).
  int Resolve(int replicas, bool round_up) const;
  Json ToJson() const;
};
// How a rolling update replaces instances: at most `max_surge` instances above the replicas,
// at most `max_unavailable` of the replicas not ready. Both 0 is refused.
struct Rollout {
  Amount max_surge{1, false};
  Amount max_unavailable{0, false};
};
// How a job or cronjob component runs (Kubernetes' Job and CronJob settings, in berth words).
struct JobSettings {
  int retries = 3;        // failed attempts retried before the run fails (backoffLimit)
  int timeout_s = 0;      // a run still going after this long is stopped and failed; 0 = none
  int history_limit = 10;  // finished runs kept (older ones and their logs are deleted)
  // What a new run does while another runs (a firing of the schedule or a manual run):
  // allow (both run), forbid (the new one is skipped / refused), replace (the running one is
  // cancelled and stopped).
  std::string concurrency_policy = "allow";
  bool suspend = false;   // cronjob only: the schedule fires no runs
};
struct Component {
  std::string name;
  std::string kind = "service";  // service | stateful | job | cronjob
  std::string schedule;          // cronjob only
  // job and cronjob only (absent from the JSON of other kinds). `replicas` does not apply to
  // them: each run is one instance.
  JobSettings job;
  Source source;
  BuildSettings build;
  std::vector<Port> ports;
  std::map<std::string, std::string> env;
  std::vector<ConfigFile> config_files;
  std::vector<Volume> volumes;
  Health health;
  Resources resources;
  int replicas = 1;  // of the main (web) process; services and stateful components
  // Replica counts of the version's other process types (Procfile `worker: ...`), by type:
  // {"worker": 2}. A type of the running version that is not listed runs 1 instance; 0 stops
  // it. Not "web" (that is `replicas`). See docs/architecture.md "Process types".
  std::map<std::string, int> processes;
  std::string desired_state = "running";  // running | stopped
  std::string version;  // the version to run ("v3"); "" = the newest ready version
  // Bumped by POST .../restart; the runtime rolls every instance when it changes.
  int64_t restart_generation = 0;
  Rollout rollout;
  int grace_period_s = 10;  // stop: SIGTERM, this long, then SIGKILL
  // Connection info this component gives the components that depend on it (Rainbond's
  // "connection information"), e.g. {"DB_USER": "app"}: set in their env as written.
  std::map<std::string, std::string> connection_env;
};
Result<Component> ParseComponent(const Json& in);
Json ToJson(const Component& c);

// Not checked by ParseComponent (a stored component written before these rules must still
// load): the API checks a source when it is written (build/source_policy.h), the builder before
// every fetch.
//
// What a git source's URL names: a remote repository — https://, http://, ssh:// (also
// git+ssh://) or scp-like [user@]host:path — or one on the server's own disk (an absolute path
// or file://<absolute path>), which the API admits only under the source roots
// (build/source_policy.h). Everything else is refused with 400 `invalid_source` naming `field`:
// other schemes (git://, ftp://, ...), `<transport>::` remote helpers (ext::, fd::), a URL, host
// or user that starts with '-' (read by git or ssh as an option), control characters and
// spaces, relative paths.
enum class GitUrlKind { kRemote, kLocal };
Result<GitUrlKind> CheckGitUrl(const std::string& url, const std::string& field);
// The path on the server of a kLocal git URL ("file:///srv/x" -> "/srv/x").
std::string GitLocalPath(const std::string& url);
// A git branch, tag or commit as a source's ref: "" (the default branch), or a name git's
// check-ref-format allows that cannot be read as an option (no leading '-'), with no "..",
// "@{", control characters, spaces or any of \ ~ ^ : ? * [. Errors: 400 invalid_source.
Status CheckGitRef(const std::string& ref, const std::string& field);

struct Dependency {
  std::string name;
  std::string target_app;
  std::string target_component;
};
// Input: {"target_component", "target_app"?}; `app` fills a missing target_app and derives
// the name.
Result<Dependency> ParseDependencyInput(const Json& in, const std::string& app);
Json ToJson(const Dependency& d);

struct Version {
  std::string name;         // "v3"
  int64_t number = 0;
  std::string status = "ready";  // queued | building | ready | failed | cancelled
  std::string artifact;
  std::string start_command;
  std::string commit;
  std::string build_log;
  std::string message;
  int64_t size_bytes = 0;
  std::string built_at;
  Json detect = Json::object();
  // What a build was asked to build (source and build settings at queue time, who asked);
  // set by the API when a build is queued.
  Json build_request = Json::object();
};
// `artifact` must be "" or "sha256:<64 lower-case hex digits>" (a digest names the artifact;
// the server derives its directory DATA/artifacts/<hex>): anything else is 400 unsafe_path.
// `build_log` is read as is: the server never uses it as a path (it derives the log's place
// from the names, builder::BuildLogPath), and the API refuses it on input.
Result<Version> ParseVersion(const Json& in);
// True for "sha256:" followed by 64 lower-case hex digits.
bool IsArtifactDigest(const std::string& artifact);
Json ToJson(const Version& v);

struct Event {
  std::string id;
  std::string type = "normal";  // normal | warning
  std::string reason;
  std::string message;
  std::string app;
  std::string component;
  int64_t count = 1;
  std::string first_at;
  std::string last_at;
};
Result<Event> EventFromJson(const Json& stored);
Json ToJson(const Event& e);

// The current (or last) lifecycle operation of a component (kind "operation", name "current").
struct Operation {
  std::string type;    // deploy | rollback | scale | restart | stop | start | update
  std::string status = "in_progress";  // in_progress | succeeded | failed | cancelled
  std::string detail;  // what was asked, for people: "scale to 3", "deploy v4"
  std::string by;      // the user, or "berth" for a deploy the platform started itself
  std::string started_at;
  std::string finished_at;
  std::string message;  // why it failed or was cancelled; how it ended
};
Result<Operation> OperationFromJson(const Json& stored);
Json ToJson(const Operation& o);

// Validates a 5-field cron expression (minute hour day-of-month month day-of-week) with
// numbers, ranges, lists, steps and '*'.
Status ValidateCron(const std::string& expr, const std::string& field);

// A parsed cron schedule (UTC). Masks have bit v set when value v fires; day-of-week 0 is
// Sunday (7 is read as 0). As in cron, when both day-of-month and day-of-week are restricted
// (do not start with '*') a day matches if either does; otherwise both must.
struct CronSchedule {
  uint64_t minutes = 0, hours = 0, days = 0, months = 0, weekdays = 0;
  bool days_restricted = false;
  bool weekdays_restricted = false;
  // The first firing strictly after `after_s` (Unix seconds), in Unix seconds (whole
  // minutes); nullopt when it never fires (e.g. "0 0 30 2 *").
  std::optional<int64_t> NextAfter(int64_t after_s) const;
};
Result<CronSchedule> ParseCron(const std::string& expr, const std::string& field);

// A run of a job or cronjob (kind "run"). Stored and returned as is.
struct Run {
  std::string name;           // "run-3"
  int64_t number = 0;         // 3
  std::string status = "running";  // running | succeeded | failed | cancelled
  std::string trigger;        // deploy | schedule | manual
  std::string by;             // the user, or "berth"
  std::string version;        // the version it runs ("" until the runtime starts it)
  std::string instance;       // the instance that runs it ("<component>-run-3")
  std::string scheduled_at;   // the schedule's firing it is for (schedule runs)
  std::string started_at;
  std::string finished_at;
  int attempts = 0;
  Json last_exit = nullptr;   // {code, signal, oom, reason} of the last attempt
  std::string message;        // how it ended, for people
  std::string log_tail;       // the last lines of its log when it failed
  // A one-off run (`berth run COMPONENT -- CMD`, any kind): this command instead of the
  // version's start command, once (no retries). "" = the job's own command.
  std::string command;
};
Result<Run> RunFromJson(const Json& stored);
Json ToJson(const Run& r);
// "run-12" → 12; 0 when not a run name.
int64_t RunNumber(const std::string& name);

// A Procfile process type as a component's `processes` key: 1-30 of a-z, 0-9, '-' (a
// DNS label, so "<component>-<type>-<n>" names an instance), not "web" (that is replicas)
// nor "release" (it runs once per deploy, never as replicas). Errors name `field`.
Status ValidateProcessType(const std::string& type, const std::string& field);
// The process type a Procfile type runs as: lower case, '_' as '-' ("Worker_2" → "worker-2").
std::string ProcessTypeName(const std::string& procfile_type);

// Fields the API adds to every object and accepts (and ignores) on input.
const std::set<std::string>& ReadOnlyFields();

// ---- gateway (docs/gateway.md "Control plane") ----------------------------------------------
//
// HTTP and TCP rules live under their app (scope "team/app"): their backends are components of
// that app, and deleting the app deletes them. Certificates live under their team (scope
// "team") and are shared by the team's apps. A gateway_claim (scope "", named by the rule's
// routing key: "http <domain> <path> ..." or "tcp <port>") is written in the same commit as
// its rule, so two rules can never claim the same requests or listen port, across teams too.

inline constexpr char kHttpRule[] = "http_rule";
inline constexpr char kTcpRule[] = "tcp_rule";
inline constexpr char kCertificate[] = "certificate";
inline constexpr char kGatewayClaim[] = "gateway_claim";
// Which team a domain belongs to (scope "", named by the domain, "*.example.com" for a
// wildcard): {"team", "assigned", "by"} (routing/domains.h).
inline constexpr char kDomain[] = "domain";
// What the gateway reported about its listeners (scope "", name "gateway"): the snapshot
// revision it serves and every TCP route's listener with its bind error (PUT
// /api/v1/gateway/status). The API shows it on the TCP rules (`status`).
inline constexpr char kGatewayStatus[] = "gateway_status";
// The service account the gateway authenticates as (docs/security.md).
inline constexpr char kGatewayUser[] = "berth-gateway";

struct GatewayMatch {
  std::string name;
  std::string value;  // exact
};
struct RuleBackend {
  std::string component;
  int port = 0;         // a declared port of the component; 0 on input = its first HTTP port
  std::string version;  // "" = whatever versions run; "v7" = only instances of v7 (canary)
  int weight = 100;     // relative; 0 = none
};
struct RuleTimeouts {
  int connect_ms = 5000;
  int header_ms = 30000;
  int idle_ms = 60000;
  int total_ms = 0;  // 0 = none
};
struct HttpRule {
  std::string name;             // "" on input = derived from domain and path by the API
  std::string domain;           // lower case; exact ("shop.example.com") or "*.example.com"
  std::string path_prefix = "/";  // normalised: no trailing '/' except the root
  std::vector<GatewayMatch> headers;
  std::vector<GatewayMatch> cookies;
  std::vector<RuleBackend> backends;  // 1..10, at least one with weight > 0
  std::string balance = "round_robin";  // round_robin | least_conn | hash_cookie | hash_ip
  std::string hash_cookie = "berth_affinity";
  std::string certificate;      // a certificate of the team, for HTTPS on this domain
  bool redirect_https = false;  // needs `certificate`
  double rate_limit_rps = 0;    // per client address; 0 = unlimited
  int rate_limit_burst = 0;     // 0 = rps rounded up
  int64_t max_body_bytes = 0;   // 0 = the gateway's default
  RuleTimeouts timeouts;
};
Result<HttpRule> ParseHttpRule(const Json& in);
Json ToJson(const HttpRule& r);
// What a rule matches: equal keys would route the same requests, so they conflict.
// "http <domain> <path>[ h:<name>=<value>]...[ c:<name>=<value>]..." (names lower-cased for
// headers, sorted).
std::string HttpRuleKey(const HttpRule& r);
// A DNS-label name derived from the domain and path ("shop-example-com-api"), with a short
// hash of the key when there are header/cookie matches or the name would be too long.
std::string DefaultHttpRuleName(const HttpRule& r);

struct TcpRule {
  std::string name;  // "" on input = "tcp-<listen_port>"
  int listen_port = 0;
  std::string component;
  int port = 0;  // a declared port of the component; 0 on input = its first port
  std::string balance = "round_robin";  // round_robin | least_conn | hash_ip
  int connect_timeout_ms = 5000;
  // A connection pair with no byte in either direction for this long is closed on both sides
  // (haproxy's `timeout client/server`); 1 s to 24 h.
  int idle_timeout_ms = 3600000;
};
Result<TcpRule> ParseTcpRule(const Json& in);
Json ToJson(const TcpRule& r);
std::string TcpRuleKey(const TcpRule& r);  // "tcp <listen_port>"

// The upload form: PEM text of the certificate (leaf first, then its chain; `chain_pem` is
// appended when given separately) and of its private key.
struct CertificateInput {
  std::string name;
  std::string cert_pem;
  std::string key_pem;
};
Result<CertificateInput> ParseCertificateInput(const Json& in);

// The stored form: what OpenSSL read from the PEM, and the key sealed with the server's secret
// key (never returned by the API).
struct Certificate {
  std::string name;
  std::vector<std::string> domains;  // SAN DNS names, else the subject CN
  std::string subject;
  std::string issuer;
  std::string not_before;  // RFC 3339 UTC
  std::string not_after;
  std::string fingerprint_sha256;  // of the leaf, hex
  std::string cert_pem;
  std::string key_sealed;  // auth::SecretBox::Seal(key_pem)
};
Json ToJson(const Certificate& c);
Result<Certificate> CertificateFromJson(const Json& stored);

// Lower-cases `*domain` and checks it is a host name (labels of a-z, 0-9, '-', at most 253
// characters) or a wildcard "*.<host name>".
Status ValidateDomain(std::string* domain, const std::string& field);

}  // namespace berth::model
