// gateway_harness: a test-only process around the gateway data plane (built with BERTH_TESTS).
// It starts a DataPlane from flags, applies the snapshot in --snapshot, re-applies it on SIGHUP,
// prints {"http": addr, "https": addr, "admin": addr} on one stdout line once serving, and stops
// cleanly on SIGTERM/SIGINT. Apply errors go to stderr as one JSON line; the previous snapshot
// stays.
//
//   gateway_harness --snapshot FILE [--http 127.0.0.1:0] [--https ADDR] [--admin ADDR]
//                   [--threads N] [--access-log PATH] [--header-timeout-ms N]
//                   [--idle-timeout-ms N] [--max-header-bytes N] [--max-body-bytes N]
//                   [--max-connections N]
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "gateway/gateway.h"
#include "gateway/snapshot.h"
#include "model/json_util.h"

using namespace berth;

namespace {

berth::Status ApplyFile(gateway::DataPlane& dp, const std::string& path) {
  std::ifstream in(path);
  if (!in) return InvalidArgument("cannot read " + path, "snapshot");
  std::stringstream ss;
  ss << in.rdbuf();
  Json j = Json::parse(ss.str(), nullptr, false);
  if (j.is_discarded()) return InvalidArgument("snapshot is not valid JSON", "snapshot");
  auto snap = gateway::ParseSnapshot(j);
  if (!snap.ok()) return snap.status();
  return dp.Apply(*snap);
}

void ReportError(const berth::Status& s) {
  Json e = {{"error", s.reason()}, {"message", s.message()}, {"field", s.field()}};
  std::fprintf(stderr, "%s\n", e.dump().c_str());
  std::fflush(stderr);
}

}  // namespace

int main(int argc, char** argv) {
  gateway::Options o;
  o.http = "127.0.0.1:0";
  o.https = "";
  o.admin = "";
  std::string snapshot;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "missing value for %s\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--snapshot")
      snapshot = next();
    else if (a == "--http")
      o.http = next();
    else if (a == "--https")
      o.https = next();
    else if (a == "--admin")
      o.admin = next();
    else if (a == "--threads")
      o.io_threads = std::atoi(next().c_str());
    else if (a == "--access-log")
      o.access_log = next();
    else if (a == "--header-timeout-ms")
      o.client_header_timeout_ms = std::atoi(next().c_str());
    else if (a == "--idle-timeout-ms")
      o.client_idle_timeout_ms = std::atoi(next().c_str());
    else if (a == "--max-header-bytes")
      o.max_header_bytes = std::strtoull(next().c_str(), nullptr, 10);
    else if (a == "--max-body-bytes")
      o.default_max_body_bytes = std::strtoll(next().c_str(), nullptr, 10);
    else if (a == "--max-connections")
      o.max_connections = std::atoi(next().c_str());
    else {
      std::fprintf(stderr, "unknown flag %s\n", a.c_str());
      return 2;
    }
  }
  // Signals are taken synchronously by this thread; the io threads inherit the mask.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto dp = gateway::DataPlane::Start(o);
  if (!dp.ok()) {
    ReportError(dp.status());
    return 1;
  }
  if (!snapshot.empty()) {
    berth::Status s = ApplyFile(**dp, snapshot);
    if (!s.ok()) {
      ReportError(s);
      return 1;
    }
  }
  Json ready = {{"http", (*dp)->http_address()},
                {"https", (*dp)->https_address()},
                {"admin", (*dp)->admin_address()},
                {"revision", (*dp)->revision()}};
  std::printf("%s\n", ready.dump().c_str());
  std::fflush(stdout);
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (sig == SIGHUP) {
      berth::Status s = snapshot.empty() ? berth::Status::Ok() : ApplyFile(**dp, snapshot);
      if (!s.ok()) {
        ReportError(s);
      } else {
        std::fprintf(stderr, "{\"applied\":%lld}\n", static_cast<long long>((*dp)->revision()));
        std::fflush(stderr);
      }
      continue;
    }
    break;
  }
  (*dp)->Stop(2000);
  return 0;
}
