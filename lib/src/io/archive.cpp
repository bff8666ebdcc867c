#include "mnist/io/archive.h"

#include <memory>
#include <vector>

#include <zip.h>

#include "mnist/core/error.h"
#include "mnist/io/files.h"

namespace mnist {
namespace {

struct ZipCloser {
  void operator()(zip_t* z) const { zip_discard(z); }
};
struct ZipFileCloser {
  void operator()(zip_file_t* f) const { zip_fclose(f); }
};

std::string error_text(zip_error_t* error) {
  const std::string text = zip_error_strerror(error);
  zip_error_fini(error);
  return text;
}

constexpr uint64_t kMaxArchiveBytes = uint64_t{1} << 34;  // far above any model here

}  // namespace

std::string read_archive_file(const std::string& path) {
  const auto bytes = read_file_bytes(path, kMaxArchiveBytes);
  return std::string(bytes.begin(), bytes.end());
}

void check_torch_archive(const std::string& bytes, const std::string& path) {
  const std::string what = path + ": corrupt or not a LibTorch file";
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* source = zip_source_buffer_create(bytes.data(), bytes.size(), 0, &error);
  if (source == nullptr) throw DataError(what + " (" + error_text(&error) + ")");
  // ZIP_CHECKCONS: the central directory and the members' local headers must agree.
  std::unique_ptr<zip_t, ZipCloser> archive(
      zip_open_from_source(source, ZIP_RDONLY | ZIP_CHECKCONS, &error));
  if (!archive) {
    zip_source_free(source);
    throw DataError(what + " (" + error_text(&error) + ")");
  }
  zip_error_fini(&error);
  const zip_int64_t count = zip_get_num_entries(archive.get(), 0);
  if (count <= 0) throw DataError(what + " (an empty archive)");
  std::vector<char> buffer(size_t{1} << 16);
  for (zip_int64_t i = 0; i < count; ++i) {
    zip_stat_t stat;
    zip_stat_init(&stat);
    if (zip_stat_index(archive.get(), static_cast<zip_uint64_t>(i), 0, &stat) != 0) {
      throw DataError(what + " (member " + std::to_string(i) + ": " + zip_strerror(archive.get()) +
                      ")");
    }
    const std::string name = (stat.valid & ZIP_STAT_NAME) ? stat.name : std::to_string(i);
    if ((stat.valid & ZIP_STAT_ENCRYPTION_METHOD) && stat.encryption_method != ZIP_EM_NONE) {
      throw DataError(what + " (member " + name + " is encrypted)");
    }
    // Reading a member to its end checks its CRC-32 (libzip reports a mismatch as an error).
    std::unique_ptr<zip_file_t, ZipFileCloser> member(
        zip_fopen_index(archive.get(), static_cast<zip_uint64_t>(i), 0));
    if (!member) {
      throw DataError(what + " (member " + name + ": " + zip_strerror(archive.get()) + ")");
    }
    zip_int64_t got = 0;
    while ((got = zip_fread(member.get(), buffer.data(), buffer.size())) > 0) {
    }
    if (got < 0) {
      throw DataError(what + " (member " + name + ": " +
                      zip_error_strerror(zip_file_get_error(member.get())) + ")");
    }
  }
}

}  // namespace mnist
