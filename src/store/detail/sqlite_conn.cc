#include "store/detail/sqlite_conn.h"

#include <sqlite3.h>

#include "core/disk.h"

#include <utility>

namespace berth::store_detail {

namespace {

Status StatusFor(int rc, std::string message) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_CANTOPEN:
    case SQLITE_FULL:
    case SQLITE_READONLY:
      return Unavailable(std::move(message));
    default:
      return Internal(std::move(message));
  }
}

}  // namespace

// ---- Stmt ----

Stmt::~Stmt() {
  if (stmt_ == nullptr) return;
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  *in_use_ = false;
}

Stmt::Stmt(Stmt&& other) noexcept
    : conn_(other.conn_),
      stmt_(std::exchange(other.stmt_, nullptr)),
      in_use_(other.in_use_),
      bind_rc_(other.bind_rc_) {}

void Stmt::Bind(int index, int64_t value) {
  int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK && bind_rc_ == 0) bind_rc_ = rc;
}

void Stmt::Bind(int index, std::string_view value) {
  // A zero-length blob of text must still bind as '' (not NULL), hence the non-null pointer.
  int rc = sqlite3_bind_text64(stmt_, index, value.empty() ? "" : value.data(), value.size(),
                               SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK && bind_rc_ == 0) bind_rc_ = rc;
}

Result<bool> Stmt::Step() {
  if (bind_rc_ != 0) return conn_->Error(bind_rc_, "binding parameters");
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return conn_->Error(rc, sqlite3_sql(stmt_));
}

Status Stmt::Run() {
  while (true) {
    Result<bool> row = Step();
    if (!row.ok()) return row.status();
    if (!*row) return Status::Ok();
  }
}

int64_t Stmt::ColumnInt(int col) const { return sqlite3_column_int64(stmt_, col); }

std::string Stmt::ColumnText(int col) const {
  const unsigned char* text = sqlite3_column_text(stmt_, col);
  if (text == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(text),
                     static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
}

// ---- Connection ----

Result<std::unique_ptr<Connection>> Connection::Open(const std::string& path, bool create,
                                                     int busy_timeout_ms) {
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
  if (create) flags |= SQLITE_OPEN_CREATE;
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = "cannot open store database \"" + path +
                          "\": " + (db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close_v2(db);  // a handle is allocated even on failure (unless out of memory)
    if ((rc & 0xff) == SQLITE_FULL) return DiskFull("the store cannot be opened", path);
    return StatusFor(rc, std::move(message));
  }
  sqlite3_busy_timeout(db, busy_timeout_ms);
  return std::unique_ptr<Connection>(new Connection(db, path));
}

Connection::~Connection() {
  for (auto& [sql, cached] : stmts_) sqlite3_finalize(cached.stmt);
  sqlite3_close_v2(db_);
}

Status Connection::Exec(const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return Status::Ok();
  std::string message = err != nullptr ? err : sqlite3_errstr(rc);
  sqlite3_free(err);
  if (IsDiskFull(rc)) return DiskFull("the store could not save the change", path_);
  return StatusFor(rc, "store database \"" + path_ + "\": " + message);
}

Result<std::string> Connection::QueryText(const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql, -1, &stmt, nullptr);
  if (rc != SQLITE_OK) return Error(rc, sql);
  std::string value;
  rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW) {
    const unsigned char* text = sqlite3_column_text(stmt, 0);
    if (text != nullptr) value = reinterpret_cast<const char*>(text);
    rc = SQLITE_OK;
  } else if (rc == SQLITE_DONE) {
    rc = SQLITE_OK;
  }
  Status status = rc == SQLITE_OK ? Status::Ok() : Error(rc, sql);
  sqlite3_finalize(stmt);
  if (!status.ok()) return status;
  return value;
}

Result<Stmt> Connection::Prepare(const char* sql) {
  auto it = stmts_.find(sql);
  if (it == stmts_.end()) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) {
      sqlite3_finalize(stmt);
      return Error(rc, sql);
    }
    it = stmts_.emplace(sql, Cached{stmt, false}).first;  // node-based: the entry never moves
  }
  Cached& cached = it->second;
  if (cached.in_use) {
    return Internal("store: statement prepared twice while in use: " + std::string(sql));
  }
  cached.in_use = true;
  return Stmt(this, cached.stmt, &cached.in_use);
}

Status Connection::Error(int rc, std::string_view what) const {
  // The connection's message describes the most recent failure; fall back to the code's text
  // when the failure was not recorded on the handle (e.g. a bind range error).
  const char* message =
      sqlite3_extended_errcode(db_) == rc ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
  if (IsDiskFull(rc)) return DiskFull("the store could not save the change", path_);
  std::string text = "store database \"" + path_ + "\": " + message;
  if (!what.empty()) text += " (while " + std::string(what) + ")";
  return StatusFor(rc, std::move(text));
}

bool Connection::IsDiskFull(int rc) const {
  return (rc & 0xff) == SQLITE_FULL ||
         ((rc & 0xff) == SQLITE_IOERR && IsDiskFullError(sqlite3_system_errno(db_)));
}

int64_t Connection::Changes() const { return sqlite3_changes64(db_); }

bool Connection::InTransaction() const { return sqlite3_get_autocommit(db_) == 0; }

}  // namespace berth::store_detail
