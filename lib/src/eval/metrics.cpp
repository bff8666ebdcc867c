#include "mnist/eval/metrics.h"

#include <cstdio>
#include <tuple>
#include <utility>

#include <torch/torch.h>

#include "mnist/models/head.h"

namespace mnist {

namespace {

// The model's class probabilities [n, K] (CPU) for `data`, and the sum of its per-sample losses.
std::pair<at::Tensor, double> run_model(ClassifierImpl& model, const Dataset& data,
                                        const Head& head, c10::Device device, int64_t batch_size) {
  model.eval();
  torch::InferenceMode inference;
  const int64_t n = data.size();
  std::vector<at::Tensor> probabilities;
  auto loss_sum = torch::zeros({}, torch::TensorOptions(torch::kFloat64).device(device));
  for (int64_t start = 0; start < n; start += batch_size) {
    const int64_t len = std::min(batch_size, n - start);
    const auto images = data.images.narrow(0, start, len).to(device);
    const auto labels = data.labels.narrow(0, start, len).to(device);
    const auto logits = model.forward(to_model_input(images, data.normalization));
    loss_sum += head.loss_per_sample(logits, labels).sum().to(torch::kFloat64);
    probabilities.push_back(head.probabilities(logits).to(torch::kCPU));
  }
  return {torch::cat(probabilities), loss_sum.item<double>()};
}

EvalResult summarize(at::Tensor probabilities, double loss_sum, const at::Tensor& labels_any,
                     int64_t num_classes) {
  EvalResult r;
  r.count = probabilities.size(0);
  r.probabilities = std::move(probabilities);
  r.predictions = r.probabilities.argmax(1);
  const auto labels = labels_any.to(torch::kCPU);
  r.confusion = torch::bincount(labels * num_classes + r.predictions, /*weights=*/{},
                                num_classes * num_classes)
                    .view({num_classes, num_classes});
  const auto n = static_cast<double>(r.count);
  r.accuracy = static_cast<double>(r.confusion.trace().item<int64_t>()) / n;
  r.loss = loss_sum / n;
  return r;
}

}  // namespace

EvalResult evaluate(ClassifierImpl& model, const Dataset& data, const Head& head,
                    int64_t num_classes, c10::Device device, int64_t batch_size) {
  TORCH_CHECK(data.size() > 0, "evaluate: empty data set");
  auto [probabilities, loss_sum] = run_model(model, data, head, device, batch_size);
  return summarize(std::move(probabilities), loss_sum, data.labels, num_classes);
}

EvalResult evaluate(ClassifierImpl& model, const Dataset& data, const Head& head,
                    int64_t num_classes, c10::Device device, int64_t batch_size,
                    const Communicator& comm) {
  if (!comm.distributed()) return evaluate(model, data, head, num_classes, device, batch_size);
  TORCH_CHECK(data.size() > 0, "evaluate: empty data set");
  const Shard mine = shard_of(data.size(), comm.rank(), comm.size());
  at::Tensor probabilities = torch::empty({0, num_classes}, torch::TensorOptions(torch::kFloat32));
  double loss_sum = 0.0;
  if (mine.count > 0) {
    const Dataset part{data.images.narrow(0, mine.begin, mine.count),
                       data.labels.narrow(0, mine.begin, mine.count),
                       data.normalization,
                       {}};
    std::tie(probabilities, loss_sum) = run_model(model, part, head, device, batch_size);
  }
  loss_sum = comm.all_reduce_sum({loss_sum}, "summing evaluation losses")[0];
  probabilities = comm.all_gather_rows(probabilities.contiguous(), "gathering predictions");
  return summarize(std::move(probabilities), loss_sum, data.labels, num_classes);
}

std::vector<ClassMetrics> per_class_metrics(const at::Tensor& confusion) {
  const auto c = confusion.to(torch::kCPU).to(torch::kInt64).contiguous();
  const int64_t k = c.size(0);
  const auto acc = c.accessor<int64_t, 2>();
  std::vector<ClassMetrics> out(static_cast<size_t>(k));
  for (int64_t i = 0; i < k; ++i) {
    int64_t predicted = 0, actual = 0;
    for (int64_t j = 0; j < k; ++j) {
      predicted += acc[j][i];
      actual += acc[i][j];
    }
    auto& m = out[static_cast<size_t>(i)];
    const auto hits = static_cast<double>(acc[i][i]);
    m.support = actual;
    m.precision = predicted > 0 ? hits / static_cast<double>(predicted) : 0.0;
    m.recall = actual > 0 ? hits / static_cast<double>(actual) : 0.0;
    m.f1 = m.precision + m.recall > 0 ? 2 * m.precision * m.recall / (m.precision + m.recall) : 0.0;
  }
  return out;
}

nlohmann::json metrics_json(const EvalResult& r, const DatasetInfo& info) {
  const auto classes = per_class_metrics(r.confusion);
  auto per_class = nlohmann::json::array();
  double precision = 0, recall = 0, f1 = 0;
  for (size_t i = 0; i < classes.size(); ++i) {
    const auto& m = classes[i];
    per_class.push_back({{"class", i},
                         {"name", info.class_names.at(i)},
                         {"precision", m.precision},
                         {"recall", m.recall},
                         {"f1", m.f1},
                         {"support", m.support}});
    precision += m.precision;
    recall += m.recall;
    f1 += m.f1;
  }
  const auto k = static_cast<double>(classes.size());
  auto matrix = nlohmann::json::array();
  const auto c = r.confusion.contiguous();
  for (int64_t i = 0; i < c.size(0); ++i) {
    std::vector<int64_t> row(c[i].data_ptr<int64_t>(), c[i].data_ptr<int64_t>() + c.size(1));
    matrix.push_back(row);
  }
  return {
      {"test_accuracy", r.accuracy}, {"test_loss", r.loss},    {"num_samples", r.count},
      {"confusion_matrix", matrix},  {"per_class", per_class}, {"macro_precision", precision / k},
      {"macro_recall", recall / k},  {"macro_f1", f1 / k},     {"class_names", info.class_names}};
}

std::string predictions_csv(const EvalResult& r, const at::Tensor& labels,
                            const std::vector<std::string>& files) {
  const int64_t k = r.probabilities.size(1);
  const bool with_files = !files.empty() && static_cast<int64_t>(files.size()) == r.count;
  std::string out = "index,label,predicted,confidence";
  for (int64_t j = 0; j < k; ++j) out += ",p" + std::to_string(j);
  out += with_files ? ",file\n" : "\n";
  const auto probs = r.probabilities.to(torch::kFloat32).contiguous();
  const auto* p = probs.data_ptr<float>();
  const auto lab = labels.to(torch::kCPU).contiguous();
  const auto pred = r.predictions.contiguous();
  char buf[32];
  for (int64_t i = 0; i < r.count; ++i) {
    const int64_t predicted = pred.data_ptr<int64_t>()[i];
    out += std::to_string(i) + "," + std::to_string(lab.data_ptr<int64_t>()[i]) + "," +
           std::to_string(predicted);
    std::snprintf(buf, sizeof buf, ",%.6f", static_cast<double>(p[i * k + predicted]));
    out += buf;
    for (int64_t j = 0; j < k; ++j) {
      std::snprintf(buf, sizeof buf, ",%.6f", static_cast<double>(p[i * k + j]));
      out += buf;
    }
    if (with_files) {  // RFC 4180: quoted, inner quotes doubled
      out += ",\"";
      for (const char c : files[static_cast<size_t>(i)])
        out += c == '"' ? std::string("\"\"") : std::string(1, c);
      out += "\"";
    }
    out += "\n";
  }
  return out;
}

}  // namespace mnist
