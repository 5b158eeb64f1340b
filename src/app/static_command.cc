// `berth static --root DIR --listen ADDR:PORT [--spa]` (hidden): serves a directory as a
// website over the API's HTTP transport. It is the start command detection gives static sites
// (src/builder/detect.cc), so a static site needs no other toolchain and gets proper content
// types, validators, cache headers and, when asked, the SPA fallback. Runs until SIGTERM/SIGINT.
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include <pthread.h>

#include "api/http.h"
#include "api/static_site.h"
#include "app/config.h"
#include "app/server.h"

namespace berth {

void RegisterStaticCommand(CLI::App& app, int* exit_code) {
  struct Opts {
    std::string root = ".";
    std::string listen;
    bool spa = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("static", "Serve a directory as a static website");
  cmd->group("");  // hidden: started by the runtime for static sites
  cmd->add_option("--root", o->root, "Directory to serve (default: the current directory)");
  cmd->add_option("--listen", o->listen, "ADDR:PORT to listen on, e.g. 127.0.0.1:8080")->required();
  cmd->add_flag("--spa", o->spa,
                "Answer index.html for paths that name no file (single-page apps); also "
                "BERTH_STATIC_SPA=1 in the environment");
  cmd->callback([o, exit_code] {
    auto fail = [exit_code](const std::string& m) {
      std::fprintf(stderr, "berth static: %s\n", m.c_str());
      *exit_code = 1;
    };
    auto addr = ParseHostPort(o->listen, "--listen");
    if (!addr.ok()) return fail(addr.status().message());
    std::error_code ec;
    if (!std::filesystem::is_directory(o->root, ec)) return fail("--root " + o->root + " is not a directory");
    bool spa = o->spa;
    if (const char* e = std::getenv("BERTH_STATIC_SPA")) {
      std::string v = e;
      if (v == "1" || v == "true" || v == "yes") spa = true;
    }
    // Stop signals are taken with sigwait: block them before the transport starts its threads.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
    auto handler = api::NewStaticSiteHandler(std::filesystem::absolute(o->root, ec).string(), spa);
    HttpServerOptions ho;
    ho.address = addr->host;
    ho.port = addr->port;
    ho.io_threads = 1;
    ho.blocking_threads = 1;
    ho.body_limit = 64 << 10;  // a website takes no uploads
    auto http = NewHttpServer(ho, handler.get());
    auto port = http->Start();
    if (!port.ok()) return fail(port.status().message());
    std::printf("berth static: serving %s at http://%s:%u%s\n", o->root.c_str(), addr->host.c_str(),
                static_cast<unsigned>(*port), spa ? " (single-page app fallback)" : "");
    std::fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    http->Stop();
    *exit_code = 0;
  });
}

}  // namespace berth
