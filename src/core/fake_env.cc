#include "core/fake_env.h"

namespace berth {

class FakeEnv::Lock final : public FileLock {
 public:
  Lock(FakeEnv* env, std::string path) : env_(env), path_(std::move(path)) {}
  ~Lock() override {
    std::lock_guard<std::mutex> l(env_->mu_);
    env_->locked_.erase(path_);
  }

 private:
  FakeEnv* env_;
  std::string path_;
};

// The monotonic clock starts far from its epoch so that "now - some duration" stays positive.
FakeEnv::FakeEnv(TimePoint wall) : mono_(MonoTime{} + std::chrono::hours(1000)), wall_(wall) {}

Status FakeEnv::WriteFileAtomic(const std::string& path, std::string_view content,
                                unsigned mode) {
  std::lock_guard<std::mutex> l(mu_);
  if (!write_error_.ok()) return write_error_;
  files_[path] = Entry{std::string(content), mode & 07777};
  ++writes_;
  return Status::Ok();
}

Result<std::string> FakeEnv::ReadFile(const std::string& path, size_t limit) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = files_.find(path);
  if (it == files_.end()) return NotFound(path + " does not exist");
  return it->second.content.substr(0, limit);
}

Result<std::unique_ptr<FileLock>> FakeEnv::LockFile(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  if (!locked_.insert(path).second) return FailedPrecondition(path + " is locked by another holder");
  files_.try_emplace(path, Entry{"", 0600});
  return std::unique_ptr<FileLock>(new Lock(this, path));
}

std::string FakeEnv::FindProgram(const std::string& name, const std::string& search_path) {
  std::lock_guard<std::mutex> l(mu_);
  size_t i = 0;
  while (i <= search_path.size()) {
    size_t j = search_path.find(':', i);
    if (j == std::string::npos) j = search_path.size();
    if (j > i) {
      std::string cand = search_path.substr(i, j - i) + "/" + name;
      auto it = files_.find(cand);
      if (it != files_.end() && (it->second.mode & 0111) != 0) return cand;
    }
    i = j + 1;
  }
  return "";
}

MonoTime FakeEnv::NowMonotonic() {
  std::lock_guard<std::mutex> l(mu_);
  return mono_;
}

TimePoint FakeEnv::NowWall() {
  std::lock_guard<std::mutex> l(mu_);
  return wall_;
}

void FakeEnv::SetFile(const std::string& path, std::string content, unsigned mode) {
  std::lock_guard<std::mutex> l(mu_);
  files_[path] = Entry{std::move(content), mode & 07777};
}

void FakeEnv::RemoveFile(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  files_.erase(path);
}

std::optional<std::string> FakeEnv::File(const std::string& path) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = files_.find(path);
  if (it == files_.end()) return std::nullopt;
  return it->second.content;
}

std::optional<unsigned> FakeEnv::Mode(const std::string& path) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = files_.find(path);
  if (it == files_.end()) return std::nullopt;
  return it->second.mode;
}

void FakeEnv::FailWrites(Status error) {
  std::lock_guard<std::mutex> l(mu_);
  write_error_ = std::move(error);
}

int FakeEnv::writes() const {
  std::lock_guard<std::mutex> l(mu_);
  return writes_;
}

bool FakeEnv::IsLocked(const std::string& path) const {
  std::lock_guard<std::mutex> l(mu_);
  return locked_.count(path) != 0;
}

void FakeEnv::Advance(std::chrono::milliseconds d) {
  std::lock_guard<std::mutex> l(mu_);
  mono_ += d;
  wall_ += d;
}

void FakeEnv::SetWall(TimePoint t) {
  std::lock_guard<std::mutex> l(mu_);
  wall_ = t;
}

}  // namespace berth
