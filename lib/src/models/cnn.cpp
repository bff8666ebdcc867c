#include "mnist/models/cnn.h"

#include <torch/torch.h>

#include "layers.h"
#include "mnist/core/error.h"

namespace mnist {
namespace {

struct Built {
  torch::nn::Sequential features, head;
};

Built build(const CNNOptions& o) {
  Built b;
  int64_t c = o.in_channels, h = o.height, w = o.width;
  for (size_t block = 0; block < o.channels.size(); ++block) {
    const int64_t k = o.kernel_sizes[block];
    for (int64_t i = 0; i < o.convs_per_block; ++i) {
      // [B, c, h, w] -> [B, channels, h, w]; the bias is BatchNorm's job when there is one.
      b.features->push_back(torch::nn::Conv2d(
          torch::nn::Conv2dOptions(c, o.channels[block], k).padding(k / 2).bias(!o.batch_norm)));
      if (o.batch_norm) b.features->push_back(torch::nn::BatchNorm2d(o.channels[block]));
      b.features->push_back(layers::activation(o.activation));
      c = o.channels[block];
    }
    if (o.pool != Pool::kNone) {
      if (h < 2 || w < 2) {
        throw UsageError("model.channels: " + std::to_string(o.channels.size()) +
                         " pooling blocks shrink the " + std::to_string(o.height) + "x" +
                         std::to_string(o.width) + " images below 1x1; use fewer blocks or " +
                         "model.pool \"none\"");
      }
      if (o.pool == Pool::kMax) {
        b.features->push_back(torch::nn::MaxPool2d(2));  // [B, c, h, w] -> [B, c, h/2, w/2]
      } else {
        b.features->push_back(torch::nn::AvgPool2d(2));
      }
      h /= 2;
      w /= 2;
    }
    if (o.conv_dropout > 0.0) b.features->push_back(torch::nn::Dropout(o.conv_dropout));
  }
  if (o.global_pool) {
    b.features->push_back(torch::nn::AdaptiveAvgPool2d(1));  // [B, c, h, w] -> [B, c, 1, 1]
    h = w = 1;
  }
  b.head->push_back(torch::nn::Flatten());  // [B, c, h, w] -> [B, c*h*w]
  layers::append_classifier(b.head, c * h * w, o.hidden_sizes, o.activation, o.dropout,
                            o.num_classes);
  layers::initialise(b.features, o.init);
  layers::initialise(b.head, o.init);
  return b;
}

}  // namespace

CNNImpl::CNNImpl(const CNNOptions& options) {
  auto built = build(options);
  features_ = register_module("features", built.features);
  head_ = register_module("head", built.head);
}

at::Tensor CNNImpl::forward(const at::Tensor& images) {
  if (!channels_last_) return head_->forward(features_->forward(images));
  // The first layer's output is made channels-last: a one-channel image and its convolution's
  // weights cannot ask for it (their two orders are the same bytes); every later layer follows
  // its input's order.
  at::Tensor x = images;
  bool first = true;
  for (auto& layer : *features_) {
    x = layer.forward(x);
    if (first) x = x.contiguous(at::MemoryFormat::ChannelsLast);
    first = false;
  }
  return head_->forward(x);
}

void CNNImpl::set_channels_last(bool on) {
  channels_last_ = on;
  torch::NoGradGuard no_grad;
  const auto format = on ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  for (auto& p : parameters()) {
    if (p.dim() == 4 && !p.is_contiguous(format)) p.set_data(p.contiguous(format));
  }
}

}  // namespace mnist
