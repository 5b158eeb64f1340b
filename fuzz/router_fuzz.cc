// Fuzzes the API's front door: a request line (method and raw target) through the same
// decoding as the transport (SetTarget), the target check (CheckRequestTarget), the router and
// the whole ApiService — every real route, unauthenticated, against a scratch store. Whatever
// the bytes, the answer must be a JSON error or success with a stable code, never a 500 or an
// exception: a path or query that is not UTF-8 text is 400 invalid_path.
//
// Input: "<METHOD> <target>" (the first space splits them; no space = GET).
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "api/api_server.h"
#include "api/http.h"
#include "core/clock.h"
#include "core/names.h"
#include "model/json_util.h"
#include "store/store.h"

namespace {

struct World {
  World() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "berth-router-fuzz-XXXXXX").string();
    dir = ::mkdtemp(tmpl.data());
    store = std::move(berth::OpenSqliteStore(dir + "/berth.db", berth::StoreOptions{false}).value());
    berth::api::ApiOptions o;
    o.data_dir = dir;
    api = std::make_unique<berth::api::ApiService>(*store, berth::SystemClock::Get(), o);
    api->SetReady(true);
  }
  ~World() {
    api.reset();
    store.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  std::string dir;
  std::unique_ptr<berth::Store> store;
  std::unique_ptr<berth::api::ApiService> api;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // One store for the whole run, never destroyed (fuzzer style); its directory goes at exit.
  static World* world = [] {
    auto* w = new World();
    static std::string dir = w->dir;
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    });
    return w;
  }();
  std::string in(reinterpret_cast<const char*>(data), size);
  berth::HttpRequest req;
  size_t sp = in.find(' ');
  req.method = sp == std::string::npos ? "GET" : in.substr(0, sp);
  berth::SetTarget(&req, sp == std::string::npos ? in : in.substr(sp + 1));
  req.remote_addr = "127.0.0.1";
  berth::Status target = berth::CheckRequestTarget(req);
  if (target.ok() && !berth::IsPrintableUtf8(req.path)) std::abort();
  berth::HttpResponse r = world->api->Handle(req);
  if (r.status >= 500) std::abort();  // a 500 is a bug whatever the input
  if (!target.ok() && (r.status != 400 || r.body.find("\"invalid_path\"") == std::string::npos)) {
    std::abort();
  }
  if (!r.stream && !r.body.empty() && r.content_type == "application/json") {
    auto j = berth::Json::parse(r.body, nullptr, false);
    if (j.is_discarded()) std::abort();
  }
  return 0;
}
