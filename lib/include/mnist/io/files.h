#pragma once
// File helpers with the guarantees the run folder relies on: whole reads with a size cap, and
// writes that are atomic (a temporary file in the same folder, flushed, then renamed over the
// target), so a reader never sees a half-written file, whatever moment the process is killed at.

#include <cstdint>
#include <string>
#include <vector>

namespace mnist {

/// Reads all of `path`. A name ending in ".gz" must be gzip (checked by its magic bytes, not
/// trusted to zlib's transparent mode) and is decompressed to its end, so a truncated stream or a
/// bad CRC is an error. More than `max_bytes` (after decompression) is an error too, without
/// allocating that much. Only regular files are read (a FIFO or device is refused, never waited
/// on). Errors are DataError "<path>: no such file", "is a directory", "not a regular file",
/// "cannot open: ...", "cannot read: ..." or "... more than the limit of N bytes".
std::vector<uint8_t> read_file_bytes(const std::string& path, uint64_t max_bytes);

/// kSynced: on disk when the call returns (fsync of the file and of its folder). kReplaced: only
/// atomic for readers (temp + rename, no fsync): for files rewritten often that a crash may lose,
/// such as a training's progress.json.
enum class Durability { kSynced, kReplaced };

/// Writes `bytes` to `path` atomically (temp + rename; with kSynced also fsync of the file and of
/// the folder). RunError naming `path` on failure.
void write_file_atomic(const std::string& path, const std::string& bytes,
                       Durability durability = Durability::kSynced);

/// Writes `bytes` to `path` gzip-compressed (tests and fixtures). RunError naming `path` on
/// failure.
void write_file_gzip(const std::string& path, const std::string& bytes);

/// Reads a small text file; DataError naming `path` when it cannot.
std::string read_text_file(const std::string& path);

}  // namespace mnist
