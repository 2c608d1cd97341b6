// CompiledForest: XGBoost JSON -> flat node array; native prediction and
// exact TreeSHAP (Lundberg, Erion & Lee 2018, Algorithm 2).
#include <boost/json.hpp>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <string>
#include <string_view>
#include <vector>

#include "models/models.h"

namespace reai::models {

namespace json = boost::json;

namespace {

// XGBoost writes numbers inside learner_model_param as strings ("5E-1").
Result<double> number_field(const json::object& obj, std::string_view key) {
  const json::value* v = obj.if_contains(key);
  if (v == nullptr) return invalid_argument("model JSON: missing '" + std::string(key) + "'");
  if (v->is_number()) return v->to_number<double>();
  if (v->is_string()) {
    std::string s(v->get_string());
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    if (end != s.c_str() && *end == '\0') return d;
  }
  return invalid_argument("model JSON: '" + std::string(key) + "' is not a number");
}

Result<const json::object*> object_field(const json::object& obj, std::string_view key) {
  const json::value* v = obj.if_contains(key);
  if (v == nullptr || !v->is_object()) {
    return invalid_argument("model JSON: missing object '" + std::string(key) + "'");
  }
  return &v->get_object();
}

Result<const json::array*> array_field(const json::object& obj, std::string_view key, std::size_t size) {
  const json::value* v = obj.if_contains(key);
  if (v == nullptr || !v->is_array()) {
    return invalid_argument("model JSON: tree lacks array '" + std::string(key) + "'");
  }
  if (v->get_array().size() != size) {
    return invalid_argument("model JSON: tree array '" + std::string(key) + "' has the wrong length");
  }
  return &v->get_array();
}

Result<double> element(const json::value& v) {
  if (v.is_bool()) return v.get_bool() ? 1.0 : 0.0;
  // Boost.JSON reads 1e999 as infinity: no tree field may be.
  if (v.is_number() && std::isfinite(v.to_number<double>())) return v.to_number<double>();
  return invalid_argument("model JSON: non-numeric tree element");
}

// The learner's parts the compiler reads; they point into the parsed document.
struct LearnerSections {
  const json::object* model_param = nullptr;
  const json::object* objective = nullptr;
  const json::object* booster = nullptr;
};

Result<LearnerSections> learner_sections(const json::object& root) {
  auto learner = object_field(root, "learner");
  if (!learner) return learner.status();
  auto model_param = object_field(**learner, "learner_model_param");
  if (!model_param) return model_param.status();
  auto objective = object_field(**learner, "objective");
  if (!objective) return objective.status();
  auto booster = object_field(**learner, "gradient_booster");
  if (!booster) return booster.status();
  return LearnerSections{*model_param, *objective, *booster};
}

Status require_gbtree(const json::object& booster) {
  const json::value* name = booster.if_contains("name");
  if (name == nullptr || !name->is_string() || name->get_string() != "gbtree") {
    return failed_precondition("model JSON: only gbtree boosters compile");
  }
  return Status::ok();
}

// Whether every element of `obj[key]` is the number 0 (true when there is no
// such array: XGBoost leaves it out for the common case).
bool all_zero(const json::object& obj, std::string_view key) {
  const json::value* array = obj.if_contains(key);
  if (array == nullptr || !array->is_array()) return true;
  return std::all_of(array->get_array().begin(), array->get_array().end(),
                     [](const json::value& v) { return v.is_number() && v.to_number<double>() == 0; });
}

// tree_info names each tree's output group; anything but group 0 means a
// multi-output model, whose trees cannot be summed into one margin.
Status require_single_output(const json::object& model) {
  if (all_zero(model, "tree_info")) return Status::ok();
  return failed_precondition("model JSON: multi-output trees do not compile");
}

// Only numerical splits (type 0) are compiled; a categorical split tests set
// membership, which the node layout cannot hold.
Status require_numerical_splits(const json::object& tree) {
  if (all_zero(tree, "split_type")) return Status::ok();
  return failed_precondition("model JSON: categorical splits do not compile");
}

// One tree's parallel per-node arrays, all of the same length.
struct TreeArrays {
  std::size_t size = 0;
  const json::array* left = nullptr;
  const json::array* right = nullptr;
  const json::array* feature = nullptr;
  const json::array* condition = nullptr;
  const json::array* default_left = nullptr;
  const json::array* hessian = nullptr;
};

Result<TreeArrays> tree_arrays(const json::object& tree) {
  auto left = tree.if_contains("left_children");
  if (left == nullptr || !left->is_array() || left->get_array().empty()) {
    return invalid_argument("model JSON: tree without left_children");
  }
  const std::size_t n = left->get_array().size();
  auto right = array_field(tree, "right_children", n);
  auto feature = array_field(tree, "split_indices", n);
  auto condition = array_field(tree, "split_conditions", n);
  auto default_left = array_field(tree, "default_left", n);
  auto hessian = array_field(tree, "sum_hessian", n);
  for (const Status& s : {right.status(), feature.status(), condition.status(), default_left.status(),
                          hessian.status()}) {
    REAI_RETURN_IF_ERROR(s);
  }
  return TreeArrays{n, &left->get_array(), *right, *feature, *condition, *default_left, *hessian};
}

// Node i's entries in the tree's arrays, as numbers, indices still local to the tree.
Result<XgbTreeNode> node_fields(const TreeArrays& arrays, std::size_t i) {
  auto l = element((*arrays.left)[i]);
  auto r = element((*arrays.right)[i]);
  auto f = element((*arrays.feature)[i]);
  auto c = element((*arrays.condition)[i]);
  auto d = element((*arrays.default_left)[i]);
  auto h = element((*arrays.hessian)[i]);
  for (const Status& s : {l.status(), r.status(), f.status(), c.status(), d.status(), h.status()}) {
    REAI_RETURN_IF_ERROR(s);
  }
  return XgbTreeNode{*l, *r, *f, *c, *d, *h};
}

Result<std::vector<XgbTreeNode>> tree_nodes(const json::object& tree) {
  auto arrays = tree_arrays(tree);
  if (!arrays) return arrays.status();
  REAI_RETURN_IF_ERROR(require_numerical_splits(tree));
  std::vector<XgbTreeNode> nodes;
  nodes.reserve(arrays->size);
  for (std::size_t i = 0; i < arrays->size; ++i) {
    auto fields = node_fields(*arrays, i);
    if (!fields) return fields.status();
    nodes.push_back(*fields);
  }
  return nodes;
}

// The booster's trees (its model's `trees`), each as its nodes.
Result<std::vector<std::vector<XgbTreeNode>>> trees_of(const json::object& booster) {
  REAI_RETURN_IF_ERROR(require_gbtree(booster));
  auto model = object_field(booster, "model");
  if (!model) return model.status();
  const json::value* trees = (*model)->if_contains("trees");
  if (trees == nullptr || !trees->is_array()) return invalid_argument("model JSON: no trees array");
  REAI_RETURN_IF_ERROR(require_single_output(**model));
  std::vector<std::vector<XgbTreeNode>> out;
  out.reserve(trees->get_array().size());
  for (const json::value& tree : trees->get_array()) {
    if (!tree.is_object()) return invalid_argument("model JSON: tree is not an object");
    auto nodes = tree_nodes(tree.get_object());
    if (!nodes) return nodes.status();
    out.push_back(std::move(*nodes));
  }
  return out;
}

Result<json::object> parse_model(std::string_view model_json) {
  json::error_code ec;
  json::value root = json::parse(model_json, ec);
  if (ec) return invalid_argument("model JSON does not parse: " + ec.message());
  if (!root.is_object()) return invalid_argument("model JSON: not an object");
  return std::move(root.get_object());
}

}  // namespace

// Builds a CompiledForest; a friend so the parsing helpers stay out of the header.
class ForestCompiler {
 public:
  static Result<CompiledForest> run(const std::string& model_json);

 private:
  static Result<CompiledForest> forest_from_params(const LearnerSections& learner);
  static Status add_tree(const std::vector<XgbTreeNode>& tree, CompiledForest& forest);
  static Result<CompiledForest::Node> node_of(const XgbTreeNode& fields, std::size_t i, std::size_t tree_size,
                                              std::int32_t offset, std::size_t num_features);
  static Status require_children_after_parents(const CompiledForest& forest, std::int32_t offset,
                                               std::size_t tree_size);
  static Status set_objective(std::string_view name, double base_score, CompiledForest& forest);
  static Status finish(CompiledForest& forest);
  static void set_fast_nodes(CompiledForest& f);
  static void set_depths_and_means(CompiledForest& f);
};

Result<CompiledForest> CompiledForest::compile(const std::string& model_json) {
  return ForestCompiler::run(model_json);
}

Result<std::vector<std::vector<XgbTreeNode>>> read_xgboost_trees(std::string_view model_json) {
  auto root = parse_model(model_json);
  if (!root) return root.status();
  auto learner = learner_sections(*root);
  if (!learner) return learner.status();
  return trees_of(*learner->booster);
}

Result<CompiledForest> ForestCompiler::run(const std::string& model_json) {
  auto root = parse_model(model_json);
  if (!root) return root.status();
  auto learner = learner_sections(*root);
  if (!learner) return learner.status();
  auto forest = forest_from_params(*learner);
  if (!forest) return forest.status();
  auto trees = trees_of(*learner->booster);
  if (!trees) return trees.status();
  for (const std::vector<XgbTreeNode>& tree : *trees) REAI_RETURN_IF_ERROR(add_tree(tree, *forest));
  REAI_RETURN_IF_ERROR(finish(*forest));
  return forest;
}

// An empty forest with the model's feature count, link and base margin.
Result<CompiledForest> ForestCompiler::forest_from_params(const LearnerSections& learner) {
  REAI_RETURN_IF_ERROR(require_gbtree(*learner.booster));
  auto num_class = number_field(*learner.model_param, "num_class");
  if (num_class && *num_class > 1) return failed_precondition("model JSON: multi-class models do not compile");
  auto num_feature = number_field(*learner.model_param, "num_feature");
  if (!num_feature) return num_feature.status();
  if (*num_feature < 1) return invalid_argument("model JSON: num_feature must be positive");
  auto base_score = number_field(*learner.model_param, "base_score");
  if (!base_score) return base_score.status();
  const json::value* objective_name = learner.objective->if_contains("name");
  if (objective_name == nullptr || !objective_name->is_string()) {
    return invalid_argument("model JSON: objective has no name");
  }

  CompiledForest forest;
  forest.num_features_ = static_cast<std::size_t>(*num_feature);
  REAI_RETURN_IF_ERROR(set_objective(objective_name->get_string(), *base_score, forest));
  return forest;
}

// Everything derived from the nodes once all trees are in: the hot-path
// copy, depths, expected values, the SHAP bias and TreeSHAP's reciprocals.
Status ForestCompiler::finish(CompiledForest& forest) {
  set_fast_nodes(forest);
  forest.reciprocals_.assign(1, 0.0);
  set_depths_and_means(forest);
  // TreeSHAP recurses once per level and keeps O(depth^2) scratch.
  constexpr int kMaxTreeDepth = 128;
  if (forest.max_depth_ > kMaxTreeDepth) {
    return failed_precondition("model JSON: trees deeper than " + std::to_string(kMaxTreeDepth) + " do not compile");
  }
  forest.expected_margin_ = forest.base_margin_;
  for (std::int32_t root_index : forest.roots_) forest.expected_margin_ += forest.path_nodes_[root_index].expected;
  // TreeSHAP paths hold at most max_depth + 1 elements; divisors reach len + 1.
  for (int k = 1; k <= forest.max_depth_ + 2; ++k) forest.reciprocals_.push_back(1.0 / k);
  return Status::ok();
}

void ForestCompiler::set_fast_nodes(CompiledForest& forest) {
  forest.fast_.reserve(forest.nodes_.size());
  for (std::size_t i = 0; i < forest.nodes_.size(); ++i) {
    const auto& n = forest.nodes_[i];
    const std::int32_t self = static_cast<std::int32_t>(i);
    if (n.feature < 0) {
      forest.fast_.push_back({n.value, 0, {self, self}});
    } else {
      const std::uint32_t default_left = n.default_child == n.left ? CompiledForest::kDefaultLeftBit : 0;
      forest.fast_.push_back({n.threshold, static_cast<std::uint32_t>(n.feature) | default_left, {n.right, n.left}});
    }
  }
}

// base_score is stored in output space; the margin is its inverse link.
Status ForestCompiler::set_objective(std::string_view name, double base_score, CompiledForest& forest) {
  using Link = CompiledForest::Link;
  auto logit = [&]() -> Result<double> {
    if (!(base_score > 0 && base_score < 1)) return invalid_argument("model JSON: base_score outside (0,1)");
    return std::log(base_score / (1 - base_score));
  };
  auto log_base = [&]() -> Result<double> {
    if (!(base_score > 0)) return invalid_argument("model JSON: base_score must be positive");
    return std::log(base_score);
  };
  Result<double> margin = base_score;
  if (name == "binary:logistic" || name == "reg:logistic") {
    forest.link_ = Link::kLogistic;
    margin = logit();
  } else if (name == "binary:logitraw") {
    forest.link_ = Link::kIdentity;
    margin = logit();
  } else if (name == "reg:squarederror" || name == "reg:linear" || name == "reg:squaredlogerror" ||
             name == "reg:pseudohubererror" || name == "reg:absoluteerror" || name == "rank:pairwise" ||
             name == "rank:ndcg" || name == "rank:map") {
    forest.link_ = Link::kIdentity;
  } else if (name == "survival:aft" || name == "count:poisson" || name == "reg:gamma" ||
             name == "reg:tweedie") {
    forest.link_ = Link::kExp;
    margin = log_base();
  } else if (name == "survival:cox") {
    forest.link_ = Link::kExp;
  } else {
    return failed_precondition("model JSON: objective '" + std::string(name) + "' does not compile");
  }
  if (!margin) return margin.status();
  forest.base_margin_ = *margin;
  return Status::ok();
}

Status ForestCompiler::add_tree(const std::vector<XgbTreeNode>& tree, CompiledForest& forest) {
  const std::int32_t offset = static_cast<std::int32_t>(forest.nodes_.size());
  for (std::size_t i = 0; i < tree.size(); ++i) {
    auto node = node_of(tree[i], i, tree.size(), offset, forest.num_features_);
    if (!node) return node.status();
    forest.nodes_.push_back(*node);
  }
  REAI_RETURN_IF_ERROR(require_children_after_parents(forest, offset, tree.size()));
  forest.roots_.push_back(offset);
  return Status::ok();
}

// Node i of a tree whose nodes start at `offset` in nodes_: child indices
// become absolute, a leaf keeps its value (XGBoost stores it in
// split_conditions).
Result<CompiledForest::Node> ForestCompiler::node_of(const XgbTreeNode& fields, std::size_t i, std::size_t tree_size,
                                                     std::int32_t offset, std::size_t num_features) {
  CompiledForest::Node node{};
  node.cover = static_cast<float>(fields.cover);
  if (fields.left < 0) {
    node.feature = -1;
    node.left = node.right = node.default_child = -1;
    node.value = static_cast<float>(fields.condition);
    node.threshold = 0;
    return node;
  }
  auto in_tree = [tree_size](double child) { return child >= 0 && child < static_cast<double>(tree_size); };
  if (!in_tree(fields.left) || !in_tree(fields.right) || fields.left == static_cast<double>(i) ||
      fields.right == static_cast<double>(i)) {
    return invalid_argument("model JSON: child index out of range");
  }
  if (!(fields.feature >= 0 && fields.feature < static_cast<double>(num_features))) {
    return invalid_argument("model JSON: split feature out of range");
  }
  node.feature = static_cast<std::int32_t>(fields.feature);
  node.left = offset + static_cast<std::int32_t>(fields.left);
  node.right = offset + static_cast<std::int32_t>(fields.right);
  node.default_child = fields.default_left != 0 ? node.left : node.right;
  node.threshold = static_cast<float>(fields.condition);
  node.value = 0;
  return node;
}

// XGBoost numbers children after parents; insisting on it rules out cycles,
// so traversal always terminates.
Status ForestCompiler::require_children_after_parents(const CompiledForest& forest, std::int32_t offset,
                                                      std::size_t tree_size) {
  for (std::size_t i = 0; i < tree_size; ++i) {
    const auto& node = forest.nodes_[offset + i];
    if (node.feature >= 0 && (node.left <= offset + static_cast<std::int32_t>(i) ||
                              node.right <= offset + static_cast<std::int32_t>(i))) {
      return invalid_argument("model JSON: tree children precede their parent");
    }
  }
  return Status::ok();
}

// Children follow their parents in nodes_ (checked in add_tree), so one
// forward pass gives depths and one backward pass the expected values; no
// recursion, whatever the trees' depth.
void ForestCompiler::set_depths_and_means(CompiledForest& f) {
  const std::size_t count = f.nodes_.size();
  std::vector<int> level(count, 0);
  for (std::size_t i = 0; i < count; ++i) {
    const auto& n = f.nodes_[i];
    if (n.feature >= 0) level[n.left] = level[n.right] = level[i] + 1;
  }
  // Cover-weighted mean leaf value below each node. Divides by the node's
  // own cover, not the children's sum (they differ by float rounding), as
  // TreeSHAP weighs the branches, so contributions add up to the margin and
  // the bias matches XGBoost's.
  f.path_nodes_.resize(count);
  for (std::size_t i = count; i-- > 0;) {
    const auto& n = f.nodes_[i];
    auto& p = f.path_nodes_[i];
    const auto& fast = f.fast_[i];
    p.threshold = fast.threshold;
    p.feature = fast.feature;
    p.child[0] = fast.child[0];
    p.child[1] = fast.child[1];
    p.expected = 0;
    if (n.feature < 0) {
      p.expected = n.value;
    } else if (n.cover > 0) {
      p.expected = (f.nodes_[n.left].cover * f.path_nodes_[n.left].expected +
                    f.nodes_[n.right].cover * f.path_nodes_[n.right].expected) / n.cover;
    }
  }
  f.max_depths_.assign(f.roots_.size(), 0);
  for (std::size_t t = 0; t < f.roots_.size(); ++t) {
    const std::size_t begin = static_cast<std::size_t>(f.roots_[t]);
    const std::size_t end = t + 1 < f.roots_.size() ? static_cast<std::size_t>(f.roots_[t + 1]) : count;
    for (std::size_t i = begin; i < end; ++i) f.max_depths_[t] = std::max(f.max_depths_[t], level[i]);
    f.max_depth_ = std::max(f.max_depth_, f.max_depths_[t]);
  }
}

namespace {

// One branch-free step down a tree (a leaf steps to itself).
template <typename FastNode>
inline std::int32_t step(const FastNode* nodes, std::int32_t index, const float* row, std::uint32_t default_bit) {
  const FastNode& n = nodes[index];
  const float v = row[n.feature & ~default_bit];
  // NaN < t is false, so a missing value only goes left by default; integer
  // arithmetic and an indexed load keep the compiler from branching on data.
  const std::uint32_t less = v < n.threshold;
  const std::uint32_t missing = std::isnan(v);
  const std::uint32_t default_left = (n.feature & default_bit) != 0;
  return n.child[less | (missing & default_left)];
}

}  // namespace

double CompiledForest::predict_margin(const float* row) const {
  // kLanes trees walk together: their loads are independent, so the CPU
  // overlaps the latency a single dependent walk would expose.
  constexpr std::size_t kLanes = 8;
  const FastNode* nodes = fast_.data();
  const std::int32_t* roots = roots_.data();
  const std::size_t trees = roots_.size();
  double sum = base_margin_;
  std::size_t t = 0;
  for (; t + kLanes <= trees; t += kLanes) {
    std::int32_t at[kLanes];
    int depth = 0;
    for (std::size_t k = 0; k < kLanes; ++k) {
      at[k] = roots[t + k];
      depth = std::max(depth, max_depths_[t + k]);
    }
    for (int level = 0; level < depth; ++level) {
      for (std::size_t k = 0; k < kLanes; ++k) at[k] = step(nodes, at[k], row, kDefaultLeftBit);
    }
    for (std::size_t k = 0; k < kLanes; ++k) sum += nodes[at[k]].threshold;
  }
  for (; t < trees; ++t) {
    std::int32_t at = roots[t];
    for (int level = 0; level < max_depths_[t]; ++level) at = step(nodes, at, row, kDefaultLeftBit);
    sum += nodes[at].threshold;
  }
  return sum;
}

double CompiledForest::path_contributions(const float* row, std::span<double> out) const {
  assert(out.size() == num_features_ + 1 && "path_contributions: out must hold num_features()+1 values");
  std::fill(out.begin(), out.end(), 0.0);
  // Trees walk in lockstep as in predict_margin; a leaf steps to itself and
  // credits 0 to feature 0.
  constexpr std::size_t kLanes = 8;
  const PathNode* nodes = path_nodes_.data();
  auto credit = [&](const PathNode*& node) {
    const std::uint32_t feature = node->feature & ~kDefaultLeftBit;
    const float v = row[feature];
    const std::uint32_t less = v < node->threshold;
    const std::uint32_t missing = std::isnan(v);
    const std::uint32_t default_left = (node->feature & kDefaultLeftBit) != 0;
    const PathNode* child = &nodes[node->child[less | (missing & default_left)]];
    out[feature] += child->expected - node->expected;
    node = child;
  };
  double margin = base_margin_;
  const std::size_t trees = roots_.size();
  std::size_t t = 0;
  for (; t + kLanes <= trees; t += kLanes) {
    const PathNode* at[kLanes];
    int depth = 0;
    for (std::size_t k = 0; k < kLanes; ++k) {
      at[k] = &nodes[roots_[t + k]];
      depth = std::max(depth, max_depths_[t + k]);
    }
    for (int level = 0; level < depth; ++level) {
      for (std::size_t k = 0; k < kLanes; ++k) credit(at[k]);
    }
    for (std::size_t k = 0; k < kLanes; ++k) margin += at[k]->expected;
  }
  for (; t < trees; ++t) {
    const PathNode* at = &nodes[roots_[t]];
    for (int level = 0; level < max_depths_[t]; ++level) credit(at);
    margin += at->expected;
  }
  out[num_features_] = expected_margin_;
  return margin;
}

double CompiledForest::predict(const float* row) const {
  const double margin = predict_margin(row);
  switch (link_) {
    case Link::kLogistic:
      return 1.0 / (1.0 + std::exp(-margin));
    case Link::kExp:
      return std::exp(margin);
    case Link::kIdentity:
      break;
  }
  return margin;
}

// ---- TreeSHAP -------------------------------------------------------------

namespace {

// One feature on the current root-to-leaf path: the fraction of training
// paths that flow through when the feature is absent (zero) and whether the
// row itself flows through (one), plus the permutation weight.
struct PathElement {
  std::int32_t feature;
  double zero;
  double one;
  double weight;
};

// `inv[k]` is 1/k: the weight updates below divide by small integers in their
// innermost loops, and multiplying by a table entry is several times cheaper.

// Appends a feature to the path of length `len` and updates the permutation
// weights of all subsets.
void extend_path(PathElement* path, int len, double zero, double one, std::int32_t feature, const double* inv) {
  path[len] = {feature, zero, one, len == 0 ? 1.0 : 0.0};
  const double scale = inv[len + 1];
  for (int i = len - 1; i >= 0; --i) {
    path[i + 1].weight += one * path[i].weight * (i + 1) * scale;
    path[i].weight = zero * path[i].weight * (len - i) * scale;
  }
}

// Undoes extend_path for element `index` of a path of length `len`.
void unwind_path(PathElement* path, int len, int index, const double* inv) {
  const int n = len - 1;
  const double one = path[index].one;
  const double zero = path[index].zero;
  double next = path[n].weight;
  if (one != 0) {
    const double inv_one = 1 / one;
    for (int j = n - 1; j >= 0; --j) {
      const double tmp = path[j].weight;
      path[j].weight = next * (n + 1) * inv[j + 1] * inv_one;
      next = tmp - path[j].weight * zero * (n - j) * inv[n + 1];
    }
  } else {
    const double inv_zero = 1 / zero;
    for (int j = n - 1; j >= 0; --j) path[j].weight = path[j].weight * (n + 1) * inv[n - j] * inv_zero;
  }
  for (int j = index; j < n; ++j) {
    path[j].feature = path[j + 1].feature;
    path[j].zero = path[j + 1].zero;
    path[j].one = path[j + 1].one;
  }
}

// Total permutation weight the path would have with element `index` removed.
double unwound_sum(const PathElement* path, int len, int index, const double* inv) {
  const int n = len - 1;
  const double one = path[index].one;
  const double zero = path[index].zero;
  double total = 0;
  if (one != 0) {
    const double inv_one = 1 / one;
    double next = path[n].weight;
    for (int j = n - 1; j >= 0; --j) {
      const double tmp = next * (n + 1) * inv[j + 1] * inv_one;
      total += tmp;
      next = path[j].weight - tmp * zero * (n - j) * inv[n + 1];
    }
  } else {
    for (int j = n - 1; j >= 0; --j) total += path[j].weight * inv[n - j];
    total *= (n + 1) / zero;
  }
  return total;
}

}  // namespace

// Recursion state shared by one shap_values call. A template so it can use
// the forest's private node type without naming it.
template <typename Node>
struct ShapWalk {
  const Node* nodes;
  const float* row;
  double* out;
  const double* inv;

  // Credits the leaf value to every feature on the path: unwound_sum for each
  // element, computed together. The sums for elements the row does not follow
  // (one == 0) share one factor; those it follows are dependent
  // multiply-subtract chains, run in lockstep so they overlap in the CPU.
  void attribute_leaf(const PathElement* path, int len, double value) const {
    constexpr int kLockstep = 64;
    if (len > kLockstep) {  // deeper than any reai model; the plain form
      for (int i = 1; i < len; ++i) {
        out[path[i].feature] += unwound_sum(path, len, i, inv) * (path[i].one - path[i].zero) * value;
      }
      return;
    }
    const int n = len - 1;
    double cold_sum = 0;
    for (int j = 0; j < n; ++j) cold_sum += path[j].weight * inv[n - j];
    cold_sum *= n + 1;

    double next[kLockstep], total[kLockstep], zero[kLockstep], inv_one[kLockstep];
    int element[kLockstep];
    int m = 0;
    for (int i = 1; i < len; ++i) {
      const PathElement& e = path[i];
      if (e.one == 0) {
        // unwound_sum = cold_sum / zero, times (one - zero) = -zero.
        if (e.zero != 0) out[e.feature] -= cold_sum * value;
        continue;
      }
      element[m] = i;
      zero[m] = e.zero;
      inv_one[m] = 1 / e.one;
      next[m] = path[n].weight;
      total[m] = 0;
      ++m;
    }
    for (int j = n - 1; j >= 0; --j) {
      const double grow = (n + 1) * inv[j + 1];
      const double shrink = (n - j) * inv[n + 1];
      const double wj = path[j].weight;
      for (int k = 0; k < m; ++k) {
        const double tmp = next[k] * grow * inv_one[k];
        total[k] += tmp;
        next[k] = wj - tmp * zero[k] * shrink;
      }
    }
    for (int k = 0; k < m; ++k) {
      const PathElement& e = path[element[k]];
      out[e.feature] += total[k] * (e.one - e.zero) * value;
    }
  }

  // `path` holds `len` elements; the callee works on a copy at path + len so
  // the caller's path survives for the sibling branch.
  void recurse(std::int32_t node_index, PathElement* path, int len, double zero, double one,
               std::int32_t feature) const {
    PathElement* mine = path + len;
    std::copy(path, path + len, mine);
    extend_path(mine, len, zero, one, feature, inv);
    ++len;
    const Node& node = nodes[node_index];
    if (node.feature < 0) {
      attribute_leaf(mine, len, node.value);
      return;
    }
    const float v = row[node.feature];
    const std::int32_t hot = std::isnan(v) ? node.default_child : (v < node.threshold ? node.left : node.right);
    const std::int32_t cold = hot == node.left ? node.right : node.left;
    double incoming_zero = 1;
    double incoming_one = 1;
    for (int i = 1; i < len; ++i) {
      if (mine[i].feature == node.feature) {
        incoming_zero = mine[i].zero;
        incoming_one = mine[i].one;
        unwind_path(mine, len, i, inv);
        --len;
        break;
      }
    }
    const double cover = node.cover;
    const double hot_share = cover > 0 ? nodes[hot].cover / cover : 0;
    const double cold_share = cover > 0 ? nodes[cold].cover / cover : 0;
    recurse(hot, mine, len, incoming_zero * hot_share, incoming_one, node.feature);
    recurse(cold, mine, len, incoming_zero * cold_share, 0, node.feature);
  }
};

void CompiledForest::shap_values(const float* row, std::span<double> out) const {
  assert(out.size() == num_features_ + 1 && "shap_values: out must hold num_features()+1 values");
  std::fill(out.begin(), out.end(), 0.0);
  // Each recursion level copies the path (at most depth + 2 long) onward.
  const std::size_t levels = static_cast<std::size_t>(max_depth_) + 2;
  thread_local std::vector<PathElement> scratch;
  if (scratch.size() < levels * (levels + 1) / 2 + levels) scratch.resize(levels * (levels + 1) / 2 + levels);
  ShapWalk<Node> walk{nodes_.data(), row, out.data(), reciprocals_.data()};
  for (std::int32_t root : roots_) walk.recurse(root, scratch.data(), 0, 1, 1, -1);
  out[num_features_] = expected_margin_;
}

}  // namespace reai::models
