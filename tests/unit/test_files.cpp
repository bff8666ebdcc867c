// The library's file layer directly: size caps on reads (raw and gzip, without allocating what a
// file claims), atomic writes (whole replacement, no temporary file left, errors naming the path),
// the run folder's refusals, and the training history's JSON and CSV forms.

#include <sys/stat.h>

#include <cmath>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "mnist/core/error.h"
#include "mnist/io/files.h"
#include "mnist/io/run_folder.h"
#include "mnist/train/history.h"
#include "support.h"

namespace mnist {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

// Runs `f`, expecting exception E whose message contains every fragment.
template <typename E, typename F>
void expect_error(F f, std::initializer_list<std::string> fragments) {
  try {
    f();
    ADD_FAILURE() << "no error";
  } catch (const E& e) {
    for (const auto& fragment : fragments) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos)
          << "\"" << e.what() << "\" lacks \"" << fragment << "\"";
    }
  }
}

TEST(Files, ReadsAreCappedRawAndAfterDecompression) {
  TempDir dir;
  const std::string raw = dir / "raw.bin";
  testing::write_bytes(raw, std::string(1000, 'x'));
  EXPECT_EQ(read_file_bytes(raw, 1000).size(), 1000u);
  expect_error<DataError>([&] { read_file_bytes(raw, 999); }, {raw, "more than the limit of 999"});
  std::string content(200000, '\0');  // several reads' worth, every byte value
  for (size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>(i * 7 % 256);
  testing::write_bytes(dir / "big.bin", content);
  const auto read = read_file_bytes(dir / "big.bin", 200000);
  EXPECT_EQ(std::string(read.begin(), read.end()), content);
  expect_error<DataError>([&] { read_file_bytes(dir / "big.bin", 199999); },
                          {"more than the limit of 199999"});

  const std::string gz = dir / "big.gz";
  write_file_gzip(gz, std::string(5 << 20, 'a'));  // 5 MB of zeros-like text: a few kB on disk
  EXPECT_LT(fs::file_size(gz), 100000u);
  EXPECT_EQ(read_file_bytes(gz, 5 << 20).size(), size_t{5} << 20);
  expect_error<DataError>([&] { read_file_bytes(gz, 1 << 20); },
                          {gz, "decompresses to more than the limit"});
}

TEST(Files, BadFilesAreDataErrorsNamingThePath) {
  TempDir dir;
  expect_error<DataError>([&] { read_file_bytes(dir / "missing", 10); },
                          {dir / "missing", "no such file"});
  expect_error<DataError>([&] { read_file_bytes(dir.path(), 10); }, {dir.path(), "is a directory"});
  // A FIFO is refused, not waited on (opening one for reading blocks until a writer comes).
  const std::string fifo = dir / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  expect_error<DataError>([&] { read_file_bytes(fifo, 10); }, {fifo, "not a regular file"});
  ASSERT_EQ(::mkfifo((fifo + ".gz").c_str(), 0600), 0);
  expect_error<DataError>([&] { read_file_bytes(fifo + ".gz", 10); },
                          {fifo + ".gz", "not a regular file"});
  expect_error<DataError>([&] { read_text_file(dir / "missing.json"); }, {dir / "missing.json"});
  const std::string fake = dir / "fake.gz";
  testing::write_bytes(fake, "not gzip at all");
  expect_error<DataError>([&] { read_file_bytes(fake, 100); }, {fake, "not a gzip file"});
  const std::string cut = dir / "cut.gz";
  write_file_gzip(cut, std::string(100000, 'q') + "tail");
  const std::string whole = testing::read_bytes(cut);
  testing::write_bytes(cut, whole.substr(0, whole.size() - 6));  // the CRC and length cut off
  expect_error<DataError>([&] { read_file_bytes(cut, 1 << 20); }, {cut, "corrupt gzip data"});
}

TEST(Files, AtomicWritesReplaceWholeAndLeaveNoTemporary) {
  TempDir dir;
  const std::string path = dir / "out.txt";
  write_file_atomic(path, "first version, longer than the second");
  write_file_atomic(path, "second");
  EXPECT_EQ(testing::read_bytes(path), "second");
  write_file_atomic(path, "");
  EXPECT_EQ(testing::read_bytes(path), "");
  EXPECT_EQ(testing::temporary_files(dir.path()), "");
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  expect_error<RunError>([&] { write_file_atomic(dir / "no/such/folder/x", "y"); },
                         {dir / "no/such/folder/x", "cannot create a temporary file"});
  // A target that is a folder cannot be replaced: the error names it and the temporary goes.
  fs::create_directories(dir / "taken");
  testing::write_bytes(dir / "taken/inside", "keep");
  expect_error<RunError>([&] { write_file_atomic(dir / "taken", "y"); },
                         {dir / "taken", "cannot replace"});
  EXPECT_EQ(testing::temporary_files(dir.path()), "");
  EXPECT_EQ(testing::read_bytes(dir / "taken/inside"), "keep");
}

TEST(RunFolderTest, RefusalsNameTheFolderOrFile) {
  TempDir dir;
  testing::write_bytes(dir / "file", "x");
  expect_error<UsageError>([&] { RunFolder::check_new(dir / "file"); },
                           {dir / "file", "exists and is not a folder"});
  fs::create_directories(dir / "full");
  testing::write_bytes(dir / "full/something", "x");
  expect_error<UsageError>([&] { RunFolder::create(dir / "full"); },
                           {dir / "full", "not empty", "--resume"});
  fs::create_directories(dir / "empty");
  const RunFolder run = RunFolder::create(dir / "empty");  // an empty folder may be used
  EXPECT_TRUE(fs::is_directory(dir / "empty/plots"));
  EXPECT_FALSE(run.finished());

  expect_error<DataError>([&] { RunFolder::open(dir / "none"); },
                          {dir / "none", "no such run folder"});
  expect_error<DataError>([&] { RunFolder::open(dir / "empty"); },
                          {dir / "empty", "not a run folder (no config.json)"});
  expect_error<DataError>([&] { run.read_json("meta.json"); }, {dir / "empty/meta.json"});
  run.write_text("meta.json", "{ not json");
  expect_error<DataError>([&] { run.read_json("meta.json"); },
                          {dir / "empty/meta.json", "not valid JSON"});
  run.write_json("config.json", {{"seed", 1}});
  EXPECT_EQ(RunFolder::open(dir / "empty").read_json("config.json").at("seed"), 1);
  run.write_json("metrics.json", nlohmann::json::object());
  EXPECT_TRUE(run.finished());
}

TEST(History, JsonRoundTripIsExactAndCsvHasEmptyCellsForNan) {
  std::vector<EpochStats> h(2);
  h[0] = {1, 0.1234567890123, 0.9, std::nan(""), std::nan(""), 1e-3, 1.5, 123456.7};
  h[1] = {2, 1.0 / 3.0, 0.95, 0.25, 0.875, 2.5e-4, 2.25, 98765.4};
  const auto back = history_from_json(nlohmann::json::parse(to_json(h).dump()), "test");
  ASSERT_EQ(back.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(back[i].epoch, h[i].epoch);
    EXPECT_EQ(back[i].train_loss, h[i].train_loss);  // bit for bit through the JSON text
    EXPECT_EQ(back[i].train_accuracy, h[i].train_accuracy);
    EXPECT_EQ(back[i].lr, h[i].lr);
    EXPECT_EQ(back[i].seconds, h[i].seconds);
    EXPECT_EQ(back[i].images_per_second, h[i].images_per_second);
  }
  EXPECT_TRUE(std::isnan(back[0].val_loss) && std::isnan(back[0].val_accuracy));
  EXPECT_EQ(back[1].val_accuracy, 0.875);
  EXPECT_EQ(history_csv(h),
            "epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds,images_per_second\n"
            "1,0.123457,0.900000,,,0.001,1.500,123457\n"
            "2,0.333333,0.950000,0.250000,0.875000,0.00025,2.250,98765\n");
  expect_error<DataError>([] { history_from_json(nlohmann::json::object(), "ckpt.pt"); },
                          {"ckpt.pt", "malformed training history"});
  expect_error<DataError>(
      [] { history_from_json(nlohmann::json::parse(R"([{"epoch": 1}])"), "ckpt.pt"); },
      {"ckpt.pt", "malformed training history"});
  expect_error<DataError>([] { history_from_json(42, "ckpt.pt"); }, {"ckpt.pt"});
}

}  // namespace
}  // namespace mnist
