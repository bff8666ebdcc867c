#pragma once
// The IDX file format of MNIST and Fashion-MNIST: a big-endian header (magic 0x0000080N, where N is
// the number of dimensions, then N 32-bit sizes) followed by unsigned bytes. Files may be raw or
// gzip (by their name ending in .gz). Everything a corrupt or wrong file can get wrong is checked,
// and nothing is allocated from a size the header merely declares.

#include <string>

#include <ATen/core/Tensor.h>

namespace mnist {

/// Reads an image file (magic 0x00000803): uint8 [N, rows, cols]. DataError naming `path` when the
/// magic, the declared sizes against the file's size (exactly: trailing bytes are an error), the
/// image size against `rows` x `cols`, or the gzip stream is wrong, or when N is 0.
at::Tensor read_idx_images(const std::string& path, int64_t rows, int64_t cols);

/// Reads a label file (magic 0x00000801): int64 [N]. DataError naming `path` as above, and when a
/// label is not below `num_classes`.
at::Tensor read_idx_labels(const std::string& path, int64_t num_classes);

/// Writes uint8 [N, rows, cols] images or [N] labels as IDX, gzip-compressed when `path` ends in
/// .gz (used by tests and fixtures). RunError naming `path` on failure.
void write_idx_images(const std::string& path, const at::Tensor& images);
void write_idx_labels(const std::string& path, const at::Tensor& labels);

}  // namespace mnist
