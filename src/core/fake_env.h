// A test double of Env (core/env.h) for any module's unit tests: files live in memory (content
// and mode per path, no directories), locks are a set of held paths, and both clocks stand
// still until the test moves them. A test can make writes fail to drive a caller's error path.
// Link `berth_core_testing`. Thread-safety: internally locked; FileLocks it hands out must not
// outlive it.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "core/env.h"

namespace berth {

class FakeEnv final : public Env {
 public:
  explicit FakeEnv(TimePoint wall = TimePoint{} + std::chrono::hours(24 * 365 * 56));

  Status WriteFileAtomic(const std::string& path, std::string_view content,
                         unsigned mode) override;
  Result<std::string> ReadFile(const std::string& path,
                               size_t limit = static_cast<size_t>(-1)) override;
  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) override;
  // Files whose mode has any execute bit count as programs.
  std::string FindProgram(const std::string& name, const std::string& search_path) override;
  MonoTime NowMonotonic() override;
  TimePoint NowWall() override;

  // ---- what the test sets and looks at ----
  void SetFile(const std::string& path, std::string content, unsigned mode = 0644);
  void RemoveFile(const std::string& path);
  std::optional<std::string> File(const std::string& path) const;
  std::optional<unsigned> Mode(const std::string& path) const;
  // From now on every WriteFileAtomic returns `error` and changes nothing (Status::Ok() undoes
  // it).
  void FailWrites(Status error);
  int writes() const;  // successful WriteFileAtomic calls
  bool IsLocked(const std::string& path) const;
  // Moves both clocks forward (the wall clock can also be set, as a clock jump).
  void Advance(std::chrono::milliseconds d);
  void SetWall(TimePoint t);

 private:
  struct Entry {
    std::string content;
    unsigned mode = 0644;
  };
  class Lock;

  mutable std::mutex mu_;
  std::map<std::string, Entry> files_;  // guarded by mu_
  std::set<std::string> locked_;        // guarded by mu_
  Status write_error_;                  // guarded by mu_
  int writes_ = 0;                      // guarded by mu_
  MonoTime mono_;                       // guarded by mu_
  TimePoint wall_;                      // guarded by mu_
};

}  // namespace berth
