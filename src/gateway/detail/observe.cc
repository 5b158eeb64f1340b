#include "gateway/detail/observe.h"

#include <cinttypes>

namespace berth::gateway::detail {
namespace {

constexpr size_t kFlushBytes = 64 * 1024;

void AppendLabel(std::string* out, std::string_view s) {
  for (char c : s) {
    if (c == '\\' || c == '"') {
      out->push_back('\\');
      out->push_back(c);
    } else if (c == '\n') {
      out->append("\\n");
    } else {
      out->push_back(c);
    }
  }
}

}  // namespace

void AppendJsonEscaped(std::string* out, std::string_view s) {
  static const char* kHex = "0123456789abcdef";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (c < 0x20 || c >= 0x80) {
          // Non-ASCII bytes are escaped one by one: request paths are not always UTF-8.
          out->append("\\u00");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 15]);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
}

RouteMetrics::RouteMetrics(std::string k, std::string r, std::string t, std::string a,
                           std::string c, int n)
    : kind(std::move(k)),
      route(std::move(r)),
      team(std::move(t)),
      app(std::move(a)),
      component(std::move(c)),
      slots(new RouteSlot[n]),
      nslots(n) {}

void RouteMetrics::Record(int slot, int status, uint64_t in, uint64_t out, uint64_t micros) {
  RouteSlot& s = slots[slot];
  int cls = status / 100;
  Bump(s.status[(cls >= 1 && cls <= 5) ? cls : 0]);
  if (in) Bump(s.bytes_in, in);
  if (out) Bump(s.bytes_out, out);
  double secs = micros / 1e6;
  size_t b = 0;
  while (b < kLatencyBounds.size() && secs > kLatencyBounds[b]) ++b;
  Bump(s.latency[b]);
  Bump(s.latency_sum_us, micros);
}

Metrics::Metrics(int slots)
    : nslots_(slots),
      active_(new Gauge[slots]),
      unmatched_(std::make_shared<RouteMetrics>("http", "", "", "", "", slots)) {}

std::shared_ptr<RouteMetrics> Metrics::ForRoute(const std::string& kind, const std::string& id,
                                                const std::string& team, const std::string& app,
                                                const std::string& component) {
  std::lock_guard<std::mutex> l(mu_);
  auto& m = routes_[kind + "\n" + id];
  if (!m || m->team != team || m->app != app || m->component != component) {
    // A route that changed owner starts fresh counters (labels must stay truthful).
    m = std::make_shared<RouteMetrics>(kind, id, team, app, component, nslots_);
  }
  return m;
}

std::string Metrics::Render() const {
  std::vector<std::shared_ptr<RouteMetrics>> all;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& [_, m] : routes_) all.push_back(m);
  }
  all.push_back(unmatched_);
  std::string out;
  auto labels = [&](const RouteMetrics& m) {
    std::string s = "route=\"";
    AppendLabel(&s, m.route);
    s += "\",team=\"";
    AppendLabel(&s, m.team);
    s += "\",app=\"";
    AppendLabel(&s, m.app);
    s += "\",component=\"";
    AppendLabel(&s, m.component);
    s += "\"";
    return s;
  };
  auto sum = [&](const RouteMetrics& m, auto field) {
    uint64_t v = 0;
    for (int i = 0; i < m.nslots; ++i) v += field(m.slots[i]).load(std::memory_order_relaxed);
    return v;
  };
  char num[64];
  out +=
      "# HELP berth_gateway_requests_total HTTP requests (TCP: connections) by route and status "
      "class.\n";
  out += "# TYPE berth_gateway_requests_total counter\n";
  static const char* kClass[] = {"error", "1xx", "2xx", "3xx", "4xx", "5xx"};
  for (const auto& m : all) {
    std::string l = labels(*m);
    for (int c = 0; c < 6; ++c) {
      uint64_t v = sum(*m, [&](RouteSlot& s) -> std::atomic<uint64_t>& { return s.status[c]; });
      if (v == 0) continue;
      std::snprintf(num, sizeof num, "%" PRIu64, v);
      out += "berth_gateway_requests_total{kind=\"" + m->kind + "\"," + l + ",code=\"" + kClass[c] +
             "\"} " + num + "\n";
    }
  }
  out +=
      "# HELP berth_gateway_request_duration_seconds Time from request header to the end of the "
      "response.\n";
  out += "# TYPE berth_gateway_request_duration_seconds histogram\n";
  for (const auto& m : all) {
    if (m->kind != "http") continue;
    std::string l = labels(*m);
    uint64_t cum = 0;
    for (size_t b = 0; b <= kLatencyBounds.size(); ++b) {
      cum += sum(*m, [&](RouteSlot& s) -> std::atomic<uint64_t>& { return s.latency[b]; });
      std::string le = "+Inf";
      if (b < kLatencyBounds.size()) {
        std::snprintf(num, sizeof num, "%g", kLatencyBounds[b]);
        le = num;
      }
      std::snprintf(num, sizeof num, "%" PRIu64, cum);
      out += "berth_gateway_request_duration_seconds_bucket{" + l + ",le=\"" + le + "\"} " + num +
             "\n";
    }
    uint64_t us = sum(*m, [&](RouteSlot& s) -> std::atomic<uint64_t>& { return s.latency_sum_us; });
    std::snprintf(num, sizeof num, "%.6f", us / 1e6);
    out += "berth_gateway_request_duration_seconds_sum{" + l + "} " + num + "\n";
    std::snprintf(num, sizeof num, "%" PRIu64, cum);
    out += "berth_gateway_request_duration_seconds_count{" + l + "} " + num + "\n";
  }
  struct Counter {
    const char* name;
    const char* help;
    std::atomic<uint64_t> RouteSlot::*field;
  };
  const Counter counters[] = {
      {"berth_gateway_received_bytes_total", "Body bytes received from clients.",
       &RouteSlot::bytes_in},
      {"berth_gateway_sent_bytes_total", "Body bytes sent to clients.", &RouteSlot::bytes_out},
      {"berth_gateway_upstream_errors_total",
       "Upstream failures: refused or timed-out connects, broken or malformed responses.",
       &RouteSlot::upstream_errors},
  };
  for (const auto& c : counters) {
    out += std::string("# HELP ") + c.name + " " + c.help + "\n# TYPE " + c.name + " counter\n";
    for (const auto& m : all) {
      uint64_t v = sum(*m, [&](RouteSlot& s) -> std::atomic<uint64_t>& { return s.*c.field; });
      std::snprintf(num, sizeof num, "%" PRIu64, v);
      out += std::string(c.name) + "{kind=\"" + m->kind + "\"," + labels(*m) + "} " + num + "\n";
    }
  }
  int64_t active = 0;
  for (int i = 0; i < nslots_; ++i) active += active_[i].v.load(std::memory_order_relaxed);
  out +=
      "# HELP berth_gateway_active_connections Client connections open now (HTTP, HTTPS, TCP).\n";
  out += "# TYPE berth_gateway_active_connections gauge\n";
  out += "berth_gateway_active_connections " + std::to_string(active) + "\n";
  out += "# HELP berth_gateway_snapshot_revision Store revision of the snapshot being served.\n";
  out += "# TYPE berth_gateway_snapshot_revision gauge\n";
  out += "berth_gateway_snapshot_revision " + std::to_string(revision.load()) + "\n";
  return out;
}

Result<std::unique_ptr<AccessLog>> AccessLog::Open(const std::string& path, int slots) {
  if (path == "-") return std::unique_ptr<AccessLog>(new AccessLog(stdout, false, slots));
  FILE* f = std::fopen(path.c_str(), "ae");
  if (!f) {
    return Status(Code::kInvalidArgument, "invalid_argument", "cannot open the access log " + path,
                  "access_log");
  }
  return std::unique_ptr<AccessLog>(new AccessLog(f, true, slots));
}

AccessLog::AccessLog(FILE* f, bool owned, int slots) : file_(f), owned_(owned) {
  for (int i = 0; i < slots; ++i) slots_.push_back(std::make_unique<Slot>());
  writer_ = std::thread([this] { WriterLoop(); });
}

AccessLog::~AccessLog() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  writer_.join();
  if (owned_) std::fclose(file_);
}

void AccessLog::Append(int slot, std::string_view line) {
  Slot& s = *slots_[slot];
  bool full;
  {
    std::lock_guard<std::mutex> l(s.mu);
    s.buf.append(line);
    full = s.buf.size() >= kFlushBytes;
  }
  if (full) {
    {
      std::lock_guard<std::mutex> l(mu_);
      pending_ = true;
    }
    cv_.notify_one();
  }
}

void AccessLog::WriterLoop() {
  std::string out;
  for (;;) {
    bool stop;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait_for(l, std::chrono::milliseconds(200), [&] { return stop_ || pending_; });
      pending_ = false;
      stop = stop_;
    }
    for (auto& s : slots_) {
      {
        std::lock_guard<std::mutex> l(s->mu);
        out.swap(s->buf);
      }
      if (!out.empty()) std::fwrite(out.data(), 1, out.size(), file_);
      out.clear();
    }
    std::fflush(file_);
    if (stop) return;
  }
}

}  // namespace berth::gateway::detail
