#include "mnist/data/idx.h"

#include <cstring>
#include <sstream>
#include <vector>

#include <torch/torch.h>

#include "mnist/core/error.h"
#include "mnist/io/bytes.h"
#include "mnist/io/files.h"

namespace mnist {
namespace {

constexpr uint32_t kLabelMagic = 0x00000801;  // unsigned byte, 1 dimension
constexpr uint32_t kImageMagic = 0x00000803;  // unsigned byte, 3 dimensions
// The largest file we accept after decompression: MNIST's training images are 47 MB.
constexpr uint64_t kMaxFileBytes = 1ull << 31;

std::string hex(uint32_t v) {
  std::ostringstream ss;
  ss << "0x" << std::hex;
  ss.width(8);
  ss.fill('0');
  ss << v;
  return ss.str();
}

bool ends_with_gz(const std::string& path) {
  return path.size() >= 3 && path.compare(path.size() - 3, 3, ".gz") == 0;
}

// Reads and checks the header; returns the file's bytes and the declared sizes.
std::vector<uint8_t> read_checked(const std::string& path, uint32_t magic,
                                  std::vector<uint64_t>& dims) {
  auto bytes = read_file_bytes(path, kMaxFileBytes);
  const size_t ndims = magic & 0xff;
  const size_t header = 4 + 4 * ndims;
  if (bytes.size() < 4) {
    throw DataError(path + ": too short to be an IDX file (" + std::to_string(bytes.size()) +
                    " bytes)");
  }
  const uint32_t found = load_be32(bytes.data());
  if (found != magic) {
    throw DataError(path + ": bad magic number " + hex(found) + " (expected " + hex(magic) +
                    " for " + (magic == kImageMagic ? "images" : "labels") + ")");
  }
  if (bytes.size() < header) throw DataError(path + ": truncated header");
  dims.clear();
  uint64_t payload = 1;
  for (size_t i = 0; i < ndims; ++i) {
    dims.push_back(load_be32(bytes.data() + 4 + 4 * i));
    payload *= dims.back();  // each factor < 2^32 and at most 3 of them (small): checked next
    if (payload > kMaxFileBytes) {
      throw DataError(path + ": header declares more data than the file can hold");
    }
  }
  const uint64_t expected = header + payload;
  if (bytes.size() != expected) {
    std::ostringstream msg;
    msg << path << ": header declares " << expected << " bytes but the file has " << bytes.size()
        << (bytes.size() > expected ? " (trailing bytes)" : " (truncated)");
    throw DataError(msg.str());
  }
  if (dims[0] == 0) throw DataError(path + ": holds no items (empty split)");
  return bytes;
}

torch::Tensor to_tensor(const std::vector<uint8_t>& bytes, size_t offset,
                        std::vector<int64_t> shape) {
  auto t = torch::empty(shape, torch::kUInt8);
  std::memcpy(t.data_ptr<uint8_t>(), bytes.data() + offset, static_cast<size_t>(t.numel()));
  return t;
}

void write_idx(const std::string& path, uint32_t magic, const torch::Tensor& t) {
  const auto data = t.to(torch::kCPU).to(torch::kUInt8).contiguous();
  std::string out;
  append_be32(out, magic);
  for (int64_t d : data.sizes()) append_be32(out, static_cast<uint32_t>(d));
  out.append(reinterpret_cast<const char*>(data.data_ptr<uint8_t>()),
             static_cast<size_t>(data.numel()));
  if (ends_with_gz(path)) {
    write_file_gzip(path, out);
  } else {
    write_file_atomic(path, out);
  }
}

}  // namespace

at::Tensor read_idx_images(const std::string& path, int64_t rows, int64_t cols) {
  std::vector<uint64_t> dims;
  const auto bytes = read_checked(path, kImageMagic, dims);
  if (static_cast<int64_t>(dims[1]) != rows || static_cast<int64_t>(dims[2]) != cols) {
    throw DataError(path + ": images are " + std::to_string(dims[1]) + "x" +
                    std::to_string(dims[2]) + ", expected " + std::to_string(rows) + "x" +
                    std::to_string(cols));
  }
  return to_tensor(bytes, 16, {static_cast<int64_t>(dims[0]), rows, cols});
}

at::Tensor read_idx_labels(const std::string& path, int64_t num_classes) {
  std::vector<uint64_t> dims;
  const auto bytes = read_checked(path, kLabelMagic, dims);
  for (size_t i = 8; i < bytes.size(); ++i) {
    if (bytes[i] >= num_classes) {
      throw DataError(path + ": label " + std::to_string(bytes[i]) + " at index " +
                      std::to_string(i - 8) + " is out of range 0.." +
                      std::to_string(num_classes - 1));
    }
  }
  return to_tensor(bytes, 8, {static_cast<int64_t>(dims[0])}).to(torch::kInt64);
}

void write_idx_images(const std::string& path, const at::Tensor& images) {
  TORCH_CHECK(images.dim() == 3, "write_idx_images: expected [N, rows, cols]");
  write_idx(path, kImageMagic, images);
}

void write_idx_labels(const std::string& path, const at::Tensor& labels) {
  TORCH_CHECK(labels.dim() == 1, "write_idx_labels: expected [N]");
  write_idx(path, kLabelMagic, labels);
}

}  // namespace mnist
