// Private to the store module: a thin RAII layer over one SQLite connection (sqlite3.h stays in
// the .cc files), with a cache of prepared statements and Status-returning helpers.
// Thread-safety: none. A Connection and every Stmt it hands out must be used by one thread at a
// time; the owner (SqliteStore) serializes access with its own mutexes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace berth::store_detail {

class Connection;

// A cached prepared statement in use. Going out of scope resets it (so it holds no read snapshot
// and blocks no checkpoint) and clears its bindings. Bind errors are remembered and reported by
// the next Step/Run.
class Stmt {
 public:
  ~Stmt();
  Stmt(Stmt&& other) noexcept;
  Stmt& operator=(Stmt&&) = delete;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  // Parameters are 1-based, as in SQL (?1, ?2, ...). Text is copied.
  void Bind(int index, int64_t value);
  void Bind(int index, std::string_view value);

  // Advances once: true when a row is ready, false when the statement is done.
  Result<bool> Step();
  // Runs to completion, ignoring any rows.
  Status Run();

  int64_t ColumnInt(int col) const;  // 0-based, as in the SQLite API
  std::string ColumnText(int col) const;

 private:
  friend class Connection;
  Stmt(Connection* conn, sqlite3_stmt* stmt, bool* in_use)
      : conn_(conn), stmt_(stmt), in_use_(in_use) {}

  Connection* conn_;
  sqlite3_stmt* stmt_;
  bool* in_use_;     // the cache entry's flag, cleared on destruction
  int bind_rc_ = 0;  // first failing bind's result code, 0 when all binds succeeded
};

class Connection {
 public:
  // Opens `path` (creating the file when `create`), with extended result codes, no SQLite-level
  // mutex (callers serialize), and the given busy timeout.
  static Result<std::unique_ptr<Connection>> Open(const std::string& path, bool create,
                                                  int busy_timeout_ms);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs one or more statements that return no rows the caller needs (DDL, pragmas).
  Status Exec(const char* sql);
  // Runs a single-row, single-column query (e.g. a pragma) and returns the value as text.
  Result<std::string> QueryText(const char* sql);
  // The cached prepared statement for `sql`. `sql` must have static storage duration: its address
  // is the cache key. A statement can be in use once at a time: preparing it again while an
  // earlier Stmt for it is alive is a bug and returns kInternal.
  Result<Stmt> Prepare(const char* sql);

  // A Status describing result code `rc` with this connection's error message; `what` says what
  // was being done. Busy/locked map to kUnavailable, everything else to kInternal.
  Status Error(int rc, std::string_view what) const;
  // Rows changed by the last INSERT/UPDATE/DELETE.
  int64_t Changes() const;
  // True while an explicit transaction is open (SQLite may roll one back on its own after I/O
  // errors, so this is the source of truth before issuing ROLLBACK).
  bool InTransaction() const;
  const std::string& path() const { return path_; }

 private:
  // A full disk shows as SQLITE_FULL, or as an I/O error whose errno is ENOSPC (growing the
  // shared-memory file, say): either way the error names the disk, not SQL.
  bool IsDiskFull(int rc) const;
  Connection(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}

  sqlite3* db_;
  std::string path_;
  friend class Stmt;
  struct Cached {
    sqlite3_stmt* stmt = nullptr;
    bool in_use = false;
  };
  std::unordered_map<const char*, Cached> stmts_;
};

}  // namespace berth::store_detail
