// Open-file limits of a server process (issue 13: descriptors and connection caps).
//
// A process that serves many connections raises its RLIMIT_NOFILE soft limit to the hard limit
// once at start (RaiseOpenFileLimit). Should it run out anyway (EMFILE on accept), a SpareFd —
// one descriptor held in reserve — lets the accept loop take the waiting connection and close it
// at once instead of leaving it in the backlog (where the listener would report it ready again
// and again): the client sees a closed connection, the loop never spins.
// Thread-safety: RaiseOpenFileLimit at start-up; a SpareFd is used by one thread (its acceptor's).
#pragma once

#include <cstdint>

namespace berth {

struct OpenFileLimit {
  uint64_t soft = 0;
  uint64_t hard = 0;
  bool raised = false;  // the soft limit was lower and is now the hard limit
};

// Sets the soft RLIMIT_NOFILE to the hard limit (capped at what the kernel allows, fs.nr_open)
// and returns the limits now in force.
OpenFileLimit RaiseOpenFileLimit();

// One descriptor (/dev/null) kept open for the moment the process has none left.
class SpareFd {
 public:
  SpareFd();
  ~SpareFd();
  SpareFd(const SpareFd&) = delete;
  SpareFd& operator=(const SpareFd&) = delete;

  // Out of descriptors on `listen_fd` (a non-blocking listening socket): frees the spare,
  // accepts and closes up to `max` waiting connections, takes the spare again. Returns how many
  // were closed; 0 when none waited or the descriptor freed was taken by another thread.
  int AcceptAndClose(int listen_fd, int max = 64);

 private:
  int fd_ = -1;
};

}  // namespace berth
