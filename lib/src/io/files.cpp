#include "mnist/io/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "mnist/core/error.h"
#include "mnist/core/interrupt.h"

namespace mnist {
namespace {

namespace fs = std::filesystem;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string errno_text() {
  return std::strerror(errno);
}

// Only regular files are opened: a FIFO or a device would block or never end.
void check_regular_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) throw DataError(path + ": no such file");
    throw DataError(path + ": cannot open: " + errno_text());
  }
  if (S_ISDIR(st.st_mode)) throw DataError(path + ": is a directory");
  if (!S_ISREG(st.st_mode)) throw DataError(path + ": not a regular file");
}

// Reads to the end (the file may change size meanwhile), never more than `max_bytes`.
std::vector<uint8_t> read_raw(const std::string& path, uint64_t max_bytes) {
  // O_NONBLOCK: should the path have become a FIFO since the check, open() does not wait.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw DataError(path + ": cannot open: " + errno_text());
  struct stat st {};
  const uint64_t size = ::fstat(fd, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  const auto too_large = [&](uint64_t bytes) {
    ::close(fd);
    throw DataError(path + ": " + std::to_string(bytes) + " bytes, more than the limit of " +
                    std::to_string(max_bytes));
  };
  if (size > max_bytes) too_large(size);
  std::vector<uint8_t> bytes(size);
  uint64_t done = 0;
  while (true) {
    if (done == bytes.size()) bytes.resize(std::min<uint64_t>(max_bytes + 1, done + (1 << 16)));
    const ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const std::string why = errno_text();
      ::close(fd);
      throw DataError(path + ": cannot read: " + why);
    }
    if (n == 0) break;
    done += static_cast<uint64_t>(n);
    if (done > max_bytes) too_large(done);
  }
  ::close(fd);
  bytes.resize(done);
  return bytes;
}

std::vector<uint8_t> read_gzip(const std::string& path, uint64_t max_bytes) {
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw DataError(path + ": cannot open: " + errno_text());
    unsigned char magic[2] = {0, 0};
    in.read(reinterpret_cast<char*>(magic), 2);
    if (in.gcount() != 2 || magic[0] != 0x1f || magic[1] != 0x8b) {
      throw DataError(path + ": named .gz but is not a gzip file");
    }
  }
  std::unique_ptr<gzFile_s, int (*)(gzFile)> gz(gzopen(path.c_str(), "rb"), gzclose);
  if (!gz) throw DataError(path + ": cannot open: " + errno_text());
  std::vector<uint8_t> bytes;
  constexpr unsigned kChunk = 1u << 20;
  for (;;) {
    const size_t old_size = bytes.size();
    if (old_size > max_bytes) {
      throw DataError(path + ": decompresses to more than the limit of " +
                      std::to_string(max_bytes) + " bytes");
    }
    bytes.resize(old_size + kChunk);  // grows with the real data, never with a declared size
    const int n = gzread(gz.get(), bytes.data() + old_size, kChunk);
    if (n < 0) {
      int code = 0;
      const char* msg = gzerror(gz.get(), &code);
      throw DataError(path + ": corrupt gzip data: " + (msg ? msg : "unknown error"));
    }
    bytes.resize(old_size + static_cast<size_t>(n));
    if (n == 0) break;
  }
  // gzread returns 0 both at a clean end and at a truncated one; zlib reports the latter here.
  int code = Z_OK;
  const char* msg = gzerror(gz.get(), &code);
  if (code != Z_OK) throw DataError(path + ": corrupt gzip data: " + (msg ? msg : "unknown error"));
  if (bytes.size() > max_bytes) {
    throw DataError(path + ": decompresses to more than the limit of " + std::to_string(max_bytes) +
                    " bytes");
  }
  return bytes;
}

}  // namespace

std::vector<uint8_t> read_file_bytes(const std::string& path, uint64_t max_bytes) {
  check_regular_file(path);
  return ends_with(path, ".gz") ? read_gzip(path, max_bytes) : read_raw(path, max_bytes);
}

void write_file_atomic(const std::string& path, const std::string& bytes, Durability durability) {
  const bool durable = durability == Durability::kSynced;
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::string tmp = (dir / ("." + target.filename().string() + ".tmp.XXXXXX")).string();
  const TempFileGuard guard(tmp.c_str());  // removed if a signal ends the process meanwhile
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0) throw RunError(path + ": cannot create a temporary file: " + errno_text());
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const std::string why = errno_text();
      ::close(fd);
      ::unlink(tmp.c_str());
      throw RunError(path + ": write failed: " + why);
    }
    done += static_cast<size_t>(n);
  }
  ::fchmod(fd, 0644);
  if ((durable && ::fsync(fd) != 0) || ::close(fd) != 0) {
    const std::string why = errno_text();
    ::unlink(tmp.c_str());
    throw RunError(path + ": write failed: " + why);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = errno_text();
    ::unlink(tmp.c_str());
    throw RunError(path + ": cannot replace: " + why);
  }
  if (!durable) return;
  // The rename is durable only once the folder's entry is on disk too.
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    const bool synced = ::fsync(dfd) == 0;
    ::close(dfd);
    if (!synced) throw RunError(path + ": write failed: " + errno_text());
  }
}

void write_file_gzip(const std::string& path, const std::string& bytes) {
  std::unique_ptr<gzFile_s, int (*)(gzFile)> gz(gzopen(path.c_str(), "wb"), gzclose);
  if (!gz) throw RunError(path + ": cannot create: " + errno_text());
  if (!bytes.empty() && gzwrite(gz.get(), bytes.data(), static_cast<unsigned>(bytes.size())) !=
                            static_cast<int>(bytes.size())) {
    throw RunError(path + ": gzip write failed");
  }
  if (gzclose(gz.release()) != Z_OK) throw RunError(path + ": gzip write failed");
}

std::string read_text_file(const std::string& path) {
  check_regular_file(path);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(path + ": cannot open: " + errno_text());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace mnist
