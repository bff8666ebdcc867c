#pragma once
// The integrity check that runs before LibTorch parses a checkpoint or model file.
//
// LibTorch's files are ZIP archives (tensors stored, TorchScript code deflated), but its reader
// skips the members' CRC-32s and hands their bytes to a TorchScript parser that can crash on
// corrupt input (found by fuzzing: tests/fuzz/). Checking every member's checksum first (with
// libzip) turns any corrupted, truncated or foreign file into one DataError; only intact archives
// reach LibTorch.

#include <string>

namespace mnist {

/// The bytes of the checkpoint or model file at `path`, read whole with a size cap far above any
/// model here; DataError naming it when it cannot be read. Not checked yet (check_torch_archive).
std::string read_archive_file(const std::string& path);

/// Throws DataError naming `path` unless `bytes` is a consistent ZIP archive whose members are
/// unencrypted, decompress without error and each match its CRC-32.
void check_torch_archive(const std::string& bytes, const std::string& path);

}  // namespace mnist
