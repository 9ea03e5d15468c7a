// Test harness for integration tests: temp directories, child processes (the real hkp-gateway,
// the test keyserver, gpg), a blocking HTTP/1.0 client for loopback, and the fixture manifest.
// Plain POSIX; no Beast, so test files stay cheap to compile.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace hkpgw::test {

std::string data_dir();  // where make-fixtures.sh wrote the test data
std::string fixture(const std::string& name);  // the value of NAME in keys.env
std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& content);

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs a command to completion (stdin from /dev/null) with extra environment variables.
RunResult run(const std::vector<std::string>& argv,
              const std::map<std::string, std::string>& env = {},
              std::chrono::seconds timeout = std::chrono::seconds(60));

// A child process whose stdout and stderr go to files; killed (SIGKILL) if still running at
// destruction.
class Process {
 public:
  Process(const std::vector<std::string>& argv, const std::string& log_prefix,
          const std::map<std::string, std::string>& env = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  std::string out() const { return read_file(out_path_); }
  std::string err() const { return read_file(err_path_); }
  // Waits until `needle` appears in stdout+stderr; returns the line holding it, or nullopt on
  // timeout or exit.
  std::optional<std::string> wait_for(const std::string& needle,
                                      std::chrono::milliseconds timeout = std::chrono::seconds(20));
  void signal(int sig);
  // Waits for exit; returns the exit code, or -1 on timeout.
  int wait(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  bool running();

 private:
  pid_t pid_ = -1;
  bool exited_ = false;
  int status_ = 0;
  std::string out_path_, err_path_;
};

struct HttpResult {
  int status = 0;  // 0 = no answer
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? "" : it->second;
  }
};

// One HTTP/1.0 request to "ip:port" or "[ipv6]:port" (loopback only), raw bytes out, whole
// answer in.
HttpResult http_request(const std::string& host_port, const std::string& method,
                        const std::string& target, const std::string& body = "",
                        const std::vector<std::string>& extra_headers = {});
// `s` as a JSON string, quoted, as Qt's QJsonDocument writes an upload's keytext (newlines,
// quotes and backslashes escaped).
std::string json_quoted(const std::string& s);
// How many times `needle` occurs in `text` (log lines of one kind, say).
std::size_t occurrences(const std::string& text, const std::string& needle);

// A connected TCP socket to "ip:port" or "[ipv6]:port" (loopback only) with 30 s send and
// receive timeouts, or -1; the caller closes it.
int connect_to(const std::string& host_port);

// Sends `bytes` as they are, half-closes, and returns everything the server sent until it closed.
std::string raw_exchange(const std::string& host_port, const std::string& bytes);

inline HttpResult http_get(const std::string& host_port, const std::string& target) {
  return http_request(host_port, "GET", target);
}

// A TCP port on 127.0.0.1 that was free a moment ago, for programs that cannot be told to pick
// their own (sks). The tiny race with other processes is the price of that.
int free_loopback_port();

// Polls `pred` every 50 ms until it holds or `limit` passes; returns whether it held. For
// things that happen in the background (probes, retries); never a timing assertion.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = std::chrono::seconds(15)) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return pred();
}

// Value of key=... in a log line.
std::string field(const std::string& line, const std::string& key);

}  // namespace hkpgw::test
