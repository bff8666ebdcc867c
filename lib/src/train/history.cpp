#include "mnist/train/history.h"

#include <cmath>
#include <cstdio>

#include "mnist/core/error.h"

namespace mnist {
namespace {

// JSON has no NaN: absent validation figures are stored as null.
nlohmann::json number_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json();
}
double number_or_nan(const nlohmann::json& v) {
  return v.is_number() ? v.get<double>() : std::nan("");
}

std::string cell(double v, const char* format) {
  if (!std::isfinite(v)) return "";
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

}  // namespace

nlohmann::json to_json(const std::vector<EpochStats>& history) {
  auto rows = nlohmann::json::array();
  for (const auto& s : history) {
    rows.push_back({{"epoch", s.epoch},
                    {"train_loss", number_or_null(s.train_loss)},
                    {"train_accuracy", number_or_null(s.train_accuracy)},
                    {"val_loss", number_or_null(s.val_loss)},
                    {"val_accuracy", number_or_null(s.val_accuracy)},
                    {"lr", s.lr},
                    {"seconds", s.seconds},
                    {"images_per_second", s.images_per_second}});
  }
  return rows;
}

std::vector<EpochStats> history_from_json(const nlohmann::json& j, const std::string& source) {
  std::vector<EpochStats> history;
  try {
    for (const auto& row : j) {
      EpochStats s;
      s.epoch = row.at("epoch").get<int64_t>();
      s.train_loss = number_or_nan(row.at("train_loss"));
      s.train_accuracy = number_or_nan(row.at("train_accuracy"));
      s.val_loss = number_or_nan(row.at("val_loss"));
      s.val_accuracy = number_or_nan(row.at("val_accuracy"));
      s.lr = row.at("lr").get<double>();
      s.seconds = row.at("seconds").get<double>();
      s.images_per_second = row.at("images_per_second").get<double>();
      history.push_back(s);
    }
  } catch (const nlohmann::json::exception& e) {
    throw DataError(source + ": malformed training history: " + e.what());
  }
  if (!j.is_array()) throw DataError(source + ": malformed training history");
  return history;
}

std::string history_csv(const std::vector<EpochStats>& history) {
  std::string out =
      "epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds,images_per_second\n";
  for (const auto& s : history) {
    out += std::to_string(s.epoch) + "," + cell(s.train_loss, "%.6f") + "," +
           cell(s.train_accuracy, "%.6f") + "," + cell(s.val_loss, "%.6f") + "," +
           cell(s.val_accuracy, "%.6f") + "," + cell(s.lr, "%.6g") + "," + cell(s.seconds, "%.3f") +
           "," + cell(s.images_per_second, "%.0f") + "\n";
  }
  return out;
}

}  // namespace mnist
