#include "mnist/vision/image_folder.h"

#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>
#include <tuple>

#include <torch/torch.h>

#include "mnist/core/error.h"
#include "mnist/io/files.h"
#include "mnist/vision/image_io.h"
#include "mnist/vision/preprocess.h"

namespace mnist::vision {
namespace {

namespace fs = std::filesystem;

// The test split of a one-folder layout is a property of the data, not of a run: drawn with a
// fixed seed, so every run and every evaluation of the folder sees the same test images.
constexpr uint64_t kTestSplitSeed = 0x7e57'5eed;
constexpr char kCacheMagic[8] = {'M', 'N', 'I', 'S', 'T', 'F', 'C', '1'};
constexpr uint64_t kMaxCacheBytes = 64ULL << 30;  // far beyond any folder that fits in memory

struct File {
  std::string path;  // as found below the root
  int64_t label = 0;
  uintmax_t size = 0;
  int64_t mtime = 0;  // nanoseconds since the Unix epoch (stat)
};

uint64_t fnv1a(const std::string& text) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (const unsigned char c : text) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

uint32_t crc_of(const void* data, size_t size, uint32_t crc = 0) {
  const auto* p = static_cast<const Bytef*>(data);
  while (size > 0) {  // zlib takes uInt lengths
    const auto chunk = static_cast<uInt>(std::min<size_t>(size, 1u << 30));
    crc = static_cast<uint32_t>(::crc32(crc, p, chunk));
    p += chunk;
    size -= chunk;
  }
  return crc;
}

std::string hex(uint64_t x) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(x));
  return buf;
}

bool hidden(const fs::path& p) {
  const auto name = p.filename().string();
  return !name.empty() && name[0] == '.';
}

// Every image file below `dir` (recursive, following links), sorted by path.
std::vector<File> list_images(const fs::path& dir, int64_t label) {
  std::vector<File> files;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::follow_directory_symlink, ec);
  if (ec) throw DataError(dir.string() + ": cannot list: " + ec.message());
  for (const fs::recursive_directory_iterator end; it != end; it.increment(ec)) {
    if (ec) throw DataError(dir.string() + ": cannot list: " + ec.message());
    const fs::path& p = it->path();
    if (hidden(p)) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file(ec) || !has_image_extension(p.string())) continue;
    File f;
    f.path = p.string();
    f.label = label;
    struct stat st {};
    if (::stat(f.path.c_str(), &st) == 0) {  // one call for both (filesystem's would make two)
      f.size = static_cast<uintmax_t>(st.st_size);
      f.mtime = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
    }
    files.push_back(std::move(f));
  }
  std::sort(files.begin(), files.end(),
            [](const File& a, const File& b) { return a.path < b.path; });
  return files;
}

// The cache: one file per (folder, classes, reading options), holding the listing's hash it was
// built from. Layout: magic, listing hash, N, H, W, C, skipped count, first skipped (length +
// bytes), N file paths (length + bytes), labels (int64 x N), pixels (N x H x W x C), CRC-32 of all
// before; integers little-endian.
struct CacheSlot {
  std::string path;      // empty: no cache
  uint64_t listing = 0;  // hash of the listing and options
};

void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t get_u64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

void write_cache(const CacheSlot& slot, const FolderImages& r) {
  const auto& images = r.data.images;
  const int64_t n = images.size(0), h = images.size(1), w = images.size(2);
  const int64_t c = images.dim() == 4 ? images.size(3) : 1;
  std::string out(kCacheMagic, sizeof kCacheMagic);
  put_u64(out, slot.listing);
  for (const int64_t v : {n, h, w, c, r.skipped}) put_u64(out, static_cast<uint64_t>(v));
  put_u64(out, r.first_skipped.size());
  out += r.first_skipped;
  for (const auto& file : r.data.files) {
    put_u64(out, file.size());
    out += file;
  }
  const auto labels = r.data.labels.contiguous();
  out.append(reinterpret_cast<const char*>(labels.data_ptr<int64_t>()),
             static_cast<size_t>(n) * sizeof(int64_t));
  const auto pixels = images.contiguous();
  out.append(reinterpret_cast<const char*>(pixels.data_ptr<uint8_t>()),
             static_cast<size_t>(n * h * w * c));
  uint32_t crc = crc_of(out.data(), out.size());
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
  std::error_code ec;
  fs::create_directories(fs::path(slot.path).parent_path(), ec);
  try {
    write_file_atomic(slot.path, out);
  } catch (const RunError& e) {  // a cache that cannot be written costs time, not the run
    std::fprintf(stderr, "warning: not cached: %s\n", e.what());
  }
}

// The cached images when the slot's file is intact and was built from this listing.
// Reads `size` bytes into `out`, adding them to `crc`; false at the end of the file.
bool read_exactly(std::ifstream& in, void* out, uint64_t size, uint32_t& crc) {
  in.read(static_cast<char*>(out), static_cast<std::streamsize>(size));
  if (!in || static_cast<uint64_t>(in.gcount()) != size) return false;
  crc = crc_of(out, size, crc);
  return true;
}

// The cached images when the slot's file is intact and was built from this listing. Read straight
// into the tensors (no second copy of a file that holds MNIST-M's 140 MB).
bool read_cache(const CacheSlot& slot, const FolderOptions& options, int64_t num_classes,
                FolderImages& r) {
  std::error_code ec;
  if (!fs::is_regular_file(slot.path, ec)) return false;
  const uint64_t file_size = fs::file_size(slot.path, ec);
  if (ec || file_size > kMaxCacheBytes) return false;
  std::ifstream in(slot.path, std::ios::binary);
  if (!in) return false;
  uint32_t crc = 0;
  uint8_t head[sizeof kCacheMagic + 8 * 7];
  if (!read_exactly(in, head, sizeof head, crc)) return false;
  if (std::memcmp(head, kCacheMagic, sizeof kCacheMagic) != 0) return false;
  const uint8_t* p = head + sizeof kCacheMagic;
  if (get_u64(p) != slot.listing) return false;
  const auto n = static_cast<int64_t>(get_u64(p + 8)), h = static_cast<int64_t>(get_u64(p + 16));
  const auto w = static_cast<int64_t>(get_u64(p + 24)), c = static_cast<int64_t>(get_u64(p + 32));
  const auto skipped = static_cast<int64_t>(get_u64(p + 40));
  const uint64_t name_len = get_u64(p + 48);
  if (h != options.height || w != options.width || c != options.channels || n < 0 ||
      n > (1LL << 32) || name_len > 65536) {
    return false;
  }
  // Every length is checked against what the file can still hold before anything is allocated.
  uint64_t left = file_size - sizeof head;
  const uint64_t tensors = static_cast<uint64_t>(n) * 8 + static_cast<uint64_t>(n * h * w * c) + 4;
  if (name_len + tensors > left) return false;
  std::string first(name_len, '\0');
  if (!read_exactly(in, first.data(), name_len, crc)) return false;
  left -= name_len;
  std::vector<std::string> files;
  files.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    uint8_t len_bytes[8];
    if (left < 8 + tensors || !read_exactly(in, len_bytes, 8, crc)) return false;
    const uint64_t len = get_u64(len_bytes);
    left -= 8;
    if (len > 4096 || len + tensors > left) return false;
    std::string file(len, '\0');
    if (!read_exactly(in, file.data(), len, crc)) return false;
    left -= len;
    files.push_back(std::move(file));
  }
  if (left != tensors) return false;
  auto labels = torch::empty({n}, torch::kInt64);
  auto images =
      c == 1 ? torch::empty({n, h, w}, torch::kUInt8) : torch::empty({n, h, w, c}, torch::kUInt8);
  uint8_t stored[4];
  uint32_t ignored = 0;
  if (!read_exactly(in, labels.data_ptr<int64_t>(), static_cast<uint64_t>(n) * 8, crc) ||
      !read_exactly(in, images.data_ptr<uint8_t>(), static_cast<uint64_t>(n * h * w * c), crc) ||
      !read_exactly(in, stored, 4, ignored)) {
    return false;
  }
  const uint32_t expected =
      static_cast<uint32_t>(stored[0]) | (static_cast<uint32_t>(stored[1]) << 8) |
      (static_cast<uint32_t>(stored[2]) << 16) | (static_cast<uint32_t>(stored[3]) << 24);
  if (crc != expected) return false;
  if (n > 0 && (labels.min().item<int64_t>() < 0 || labels.max().item<int64_t>() >= num_classes)) {
    return false;
  }
  r.first_skipped = std::move(first);
  r.skipped = skipped;
  r.data.files = std::move(files);
  r.data.labels = std::move(labels);
  r.data.images = std::move(images);
  r.from_cache = true;
  return true;
}

// Decodes `files` into one tensor on all cores; a file that fails is an error or, with skip_bad,
// left out. The first failure in path order is the one reported, whatever thread met it.
FolderImages decode(const std::vector<File>& files, const FolderOptions& o) {
  const auto n = static_cast<int64_t>(files.size());
  const int64_t pixels = o.height * o.width * o.channels;
  auto images = o.channels == 1 ? torch::empty({n, o.height, o.width}, torch::kUInt8)
                                : torch::empty({n, o.height, o.width, o.channels}, torch::kUInt8);
  std::vector<std::string> errors(files.size());
  std::atomic<int64_t> next{0};
  uint8_t* base = images.data_ptr<uint8_t>();
  const auto work = [&] {
    for (int64_t i = next++; i < n; i = next++) {
      const auto& f = files[static_cast<size_t>(i)];
      try {
        // Digit folders: a large JPEG decoded reduced, as mnist-predict decodes it.
        const cv::Mat image = read_image(f.path, o.digit ? digit_decode_limits() : DecodeLimits());
        const cv::Mat input =
            folder_preprocess(image, f.path, o.digit, static_cast<int>(o.channels),
                              static_cast<int>(o.height), static_cast<int>(o.width));
        copy_image_to(input, base + i * pixels);
      } catch (const std::exception& e) {
        std::string what = e.what();
        // image_io's messages start with the path; others get it.
        errors[static_cast<size_t>(i)] =
            what.rfind(f.path, 0) == 0 ? what : f.path + ": cannot read: " + what;
      }
    }
  };
  const unsigned threads = std::max(1u, std::min(std::thread::hardware_concurrency(), 8u));
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads && static_cast<int64_t>(t) * 64 < n; ++t)
    pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();

  FolderImages r;
  std::vector<int64_t> keep, labels;
  for (int64_t i = 0; i < n; ++i) {
    const auto& error = errors[static_cast<size_t>(i)];
    if (error.empty()) {
      keep.push_back(i);
      labels.push_back(files[static_cast<size_t>(i)].label);
      r.data.files.push_back(files[static_cast<size_t>(i)].path);
      continue;
    }
    if (!o.skip_bad) throw DataError(error + " (data.skip_bad: true leaves such files out)");
    if (r.skipped++ == 0) r.first_skipped = error;
  }
  r.data.labels = torch::tensor(labels, torch::kInt64);
  r.data.images = r.skipped == 0 ? images : images.index_select(0, torch::tensor(keep));
  if (labels.empty()) r.data.labels = torch::empty({0}, torch::kInt64);
  return r;
}

std::string options_text(const FolderOptions& o) {
  return std::to_string(o.height) + "x" + std::to_string(o.width) + "x" +
         std::to_string(o.channels) + (o.skip_bad ? " skip" : " strict") +
         (o.digit ? " digit" : "");
}

// Which of `class_names` the folder `name` is: the name itself, or its folder_name spelling.
int64_t class_of(const std::string& name, const std::vector<std::string>& class_names) {
  for (size_t k = 0; k < class_names.size(); ++k) {
    if (class_names[k] == name) return static_cast<int64_t>(k);
  }
  for (size_t k = 0; k < class_names.size(); ++k) {
    if (folder_name(class_names[k]) == name) return static_cast<int64_t>(k);
  }
  return -1;
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

void count_per_class(FolderImages& r, int64_t num_classes) {
  r.per_class.assign(static_cast<size_t>(num_classes), 0);
  if (r.data.size() == 0) return;
  const auto counts = torch::bincount(r.data.labels, {}, num_classes);
  for (int64_t k = 0; k < num_classes; ++k)
    r.per_class[static_cast<size_t>(k)] = counts[k].item<int64_t>();
}

std::string skipped_note(const std::string& root, const FolderImages& r) {
  return "skipped " + std::to_string(r.skipped) + " unreadable image file(s) in " + root +
         " (first: " + r.first_skipped + ")";
}

// Training needs every class: an empty one is named.
void require_every_class(const FolderImages& r, const std::string& root,
                         const std::vector<std::string>& class_names) {
  for (size_t k = 0; k < class_names.size(); ++k) {
    if (r.per_class[k] == 0) {
      throw DataError((fs::path(root) / class_names[k]).string() +
                      ": no training images for this class (every class needs some; add images "
                      "or remove the folder)");
    }
  }
}

struct Layout {
  bool split = false;  // DIR/train and DIR/test
  std::string train_root, test_root;
  std::vector<std::string> classes;
};

Layout layout_of(const std::string& dir) {
  // Checked here, not in the config: --set data.dataset=folder comes before --set data.dir=...
  if (dir.empty()) throw UsageError("data.dir: data.dataset \"folder\" needs the images' folder");
  Layout l;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw DataError(dir + ": no such folder (data.dir)");
  const fs::path train = fs::path(dir) / "train", test = fs::path(dir) / "test";
  l.split = fs::is_directory(train, ec);
  if (l.split) {
    if (!fs::is_directory(test, ec)) {
      throw DataError(test.string() + ": not found (a data.dir with train/ needs test/ as well)");
    }
    l.train_root = train.string();
    l.test_root = test.string();
    auto names = class_folders(l.train_root);
    for (auto& name : class_folders(l.test_root)) names.push_back(std::move(name));
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    l.classes = std::move(names);
  } else {
    l.train_root = dir;
    l.classes = class_folders(dir);
  }
  if (l.classes.size() < 2) {
    throw DataError(dir + ": found " + std::to_string(l.classes.size()) +
                    " class folder(s); a data set needs at least two (DIR/<class>/*.png or "
                    "DIR/train/<class>/... and DIR/test/<class>/...)");
  }
  return l;
}

// The one-folder layout's split: per class, test_fraction of its images (rounded, at least one
// when the class has two or more), drawn with a fixed seed.
std::pair<Dataset, Dataset> split_test(const Dataset& all, double test_fraction,
                                       int64_t num_classes) {
  std::vector<int64_t> train, test;
  const auto labels = all.labels.contiguous();
  const auto* y = labels.data_ptr<int64_t>();
  for (int64_t k = 0; k < num_classes; ++k) {
    std::vector<int64_t> members;
    for (int64_t i = 0; i < all.size(); ++i) {
      if (y[i] == k) members.push_back(i);
    }
    const auto m = static_cast<int64_t>(members.size());
    int64_t take = static_cast<int64_t>(std::llround(test_fraction * static_cast<double>(m)));
    if (m >= 2)
      take = std::clamp<int64_t>(take, 1, m - 1);
    else
      take = 0;
    const auto perm = seeded_permutation(m, kTestSplitSeed, static_cast<uint64_t>(k));
    const auto* p = perm.data_ptr<int64_t>();
    for (int64_t j = 0; j < m; ++j) (j < take ? test : train).push_back(members[p[j]]);
  }
  std::sort(train.begin(), train.end());
  std::sort(test.begin(), test.end());
  return {all.subset(torch::tensor(train, torch::kInt64)),
          all.subset(torch::tensor(test, torch::kInt64))};
}

FolderImages read_checked(const std::string& root, const std::vector<std::string>& classes,
                          const FolderOptions& options, std::vector<std::string>& notes) {
  FolderImages r = read_image_folder(root, classes, options);
  if (r.skipped > 0) notes.push_back(skipped_note(root, r));
  return r;
}

Dataset repeated(const Dataset& d, int64_t times) {
  if (times == 1) return d;
  return {d.images.repeat_interleave(times, 0),
          d.labels.repeat_interleave(times, 0),
          d.normalization,
          {}};
}

}  // namespace

FolderOptions FolderOptions::from(const DataConfig& data) {
  FolderOptions o;
  o.height = data.image_size.at(0);
  o.width = data.image_size.at(1);
  o.channels = data.channels;
  o.digit = data.preprocess == FolderPreprocess::kDigit;
  o.skip_bad = data.skip_bad;
  o.cache = data.cache;
  o.cache_dir = data.cache_dir;
  return o;
}

std::string folder_name(const std::string& name) {
  std::string out;
  for (const char c : name) {
    const bool keep = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
    out += keep ? c : '_';
  }
  return out.empty() ? std::string("_") : out;
}

std::vector<std::string> class_folders(const std::string& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) throw DataError(root + ": no such folder");
  std::vector<std::string> names;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_directory(ec) && !hidden(it->path()))
      names.push_back(it->path().filename().string());
  }
  if (ec) throw DataError(root + ": cannot list: " + ec.message());
  std::sort(names.begin(), names.end());
  return names;
}

FolderImages read_image_folder(const std::string& root, const std::vector<std::string>& class_names,
                               const FolderOptions& options) {
  std::vector<File> files;
  for (const auto& name : class_folders(root)) {
    const int64_t label = class_of(name, class_names);
    if (label < 0) {
      throw DataError((fs::path(root) / name).string() + ": not a class of the data set (" +
                      joined(class_names) + ")");
    }
    auto found = list_images(fs::path(root) / name, label);
    files.insert(files.end(), std::make_move_iterator(found.begin()),
                 std::make_move_iterator(found.end()));
  }
  std::sort(files.begin(), files.end(),
            [](const File& a, const File& b) { return a.path < b.path; });

  CacheSlot slot;
  if (options.cache) {
    const std::string where = fs::absolute(root).lexically_normal().string() + "\n" +
                              joined(class_names) + "\n" + options_text(options);
    std::string listing = where;
    for (const auto& f : files) {
      listing += "\n" + f.path + "\t" + std::to_string(f.size) + "\t" + std::to_string(f.mtime) +
                 "\t" + std::to_string(f.label);
    }
    const std::string dir = options.cache_dir.empty() ? default_cache_dir() : options.cache_dir;
    slot.path = (fs::path(dir) / ("folder-" + hex(fnv1a(where)) + ".bin")).string();
    slot.listing =
        fnv1a(listing) ^ (static_cast<uint64_t>(crc_of(listing.data(), listing.size())) << 1);
  }
  FolderImages r;
  const auto num_classes = static_cast<int64_t>(class_names.size());
  if (slot.path.empty() || !read_cache(slot, options, num_classes, r)) {
    r = decode(files, options);
    if (!slot.path.empty()) write_cache(slot, r);
  }
  count_per_class(r, num_classes);
  return r;
}

int64_t validation_size(const DataConfig& data, int64_t training_images) {
  if (data.val_size >= 0) return data.val_size;
  if (data.val_fraction <= 0) return 0;
  const auto n = static_cast<int64_t>(data.val_fraction * static_cast<double>(training_images));
  return std::max<int64_t>(1, n);
}

Splits load_dataset(const DataConfig& data, int64_t seed) {
  Splits s;
  const FolderOptions options = FolderOptions::from(data);
  if (data.dataset != DatasetName::kFolder) {
    s = load_splits(data, seed);
  } else {
    const Layout layout = layout_of(data.dir);
    s.info = dataset_info(DatasetName::kFolder);
    s.info.channels = options.channels;
    s.info.height = options.height;
    s.info.width = options.width;
    s.info.class_names = layout.classes;
    const auto num_classes = static_cast<int64_t>(layout.classes.size());
    FolderImages train = read_checked(layout.train_root, layout.classes, options, s.notes);
    Dataset full_train;
    if (layout.split) {
      require_every_class(train, layout.train_root, layout.classes);
      full_train = train.data;
      s.test = read_checked(layout.test_root, layout.classes, options, s.notes).data;
    } else {
      require_every_class(train, layout.train_root, layout.classes);
      std::tie(full_train, s.test) = split_test(train.data, data.test_fraction, num_classes);
    }
    if (s.test.size() == 0) {
      throw DataError((layout.split ? layout.test_root : layout.train_root) +
                      ": no test images (data.test_fraction, or images in test/)");
    }
    std::tie(s.train, s.val) =
        split_validation(full_train, validation_size(data, full_train.size()), seed);
    s.info.normalization = channel_statistics(s.train.images);
    s.train.normalization = s.val.normalization = s.test.normalization = s.info.normalization;
  }
  for (const auto& extra : data.extra) {
    FolderImages more = read_checked(extra, s.info.class_names, options, s.notes);
    if (more.data.size() == 0) continue;
    const Dataset added = repeated(more.data, data.extra_repeat);
    s.train.images = torch::cat({s.train.images, added.images});
    s.train.labels = torch::cat({s.train.labels, added.labels});
    s.train.files.clear();  // training files are not reported anywhere
  }
  return s;
}

TestSet load_test_set(const DataConfig& data) {
  TestSet t;
  if (data.dataset != DatasetName::kFolder) {
    t.data = load_test_split(data);
    t.class_names = dataset_info(data.dataset).class_names;
    return t;
  }
  const FolderOptions options = FolderOptions::from(data);
  const Layout layout = layout_of(data.dir);
  t.class_names = layout.classes;
  if (layout.split) {
    t.data = read_checked(layout.test_root, layout.classes, options, t.notes).data;
  } else {
    const FolderImages all = read_checked(layout.train_root, layout.classes, options, t.notes);
    t.data = split_test(all.data, data.test_fraction, static_cast<int64_t>(layout.classes.size()))
                 .second;
  }
  if (t.data.size() == 0) throw DataError(data.dir + ": no test images");
  return t;
}

}  // namespace mnist::vision
